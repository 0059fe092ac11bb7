// Package publish owns the load tool's publisher: POST /api/publish with a
// data object that carries its send time, over kept-alive HTTP connections,
// paced at a rate or as fast as K concurrent publishers go, and the
// publisher's own counts (sent, errors by cause, API latency, recipients,
// last seq per topic).
package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/bench/internal/wsclient"
)

// Reply is the API's answer to a publish.
type Reply struct {
	// Seq is the topic's seq the message got.
	Seq uint64 `json:"seq"`
	// Recipients is the number of subscribers offered the message.
	Recipients int64 `json:"recipients"`
}

// Client publishes through the HTTP API.
type Client struct {
	// Payload is the kind of data object published (zero: PayloadPad).
	// Set it before publishing.
	Payload Payload

	urls []string
	next atomic.Uint64
	size int
	hc   *http.Client
	tr   *http.Transport
}

// NewClient returns a publisher for api (host:port, or a comma-separated
// list of them: the nodes of a cluster, published to round-robin) sending
// data objects of about size bytes over at most conns kept-alive
// connections per endpoint.
func NewClient(api string, size, conns int) *Client {
	var urls []string
	for a := range strings.SplitSeq(api, ",") {
		if a = strings.TrimSpace(a); a != "" {
			urls = append(urls, "http://"+a+"/api/publish")
		}
	}
	if len(urls) == 0 {
		urls = []string{"http://" + api + "/api/publish"}
	}
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{
		urls: urls,
		size: size,
		tr:   tr,
		hc:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

// Close drops the kept-alive connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// StatusError is a publish answered with a status other than 200.
type StatusError struct {
	// Code is the HTTP status.
	Code int
	// Body is the start of the answer.
	Body string
}

// Error implements error.
func (e *StatusError) Error() string { return fmt.Sprintf("publish: HTTP %d: %s", e.Code, e.Body) }

// Endpoints is the number of API endpoints published to.
func (c *Client) Endpoints() int { return len(c.urls) }

// Publish sends one message to topic through the next endpoint in turn,
// its data (of the client's Payload kind) stamped with the send time.
func (c *Client) Publish(ctx context.Context, topic string) (Reply, error) {
	return c.PublishVia(ctx, int(c.next.Add(1)-1), topic)
}

// PublishVia is Publish through endpoint i mod Endpoints(), with the data
// of message i (a PayloadJSON object depends on i).
func (c *Client) PublishVia(ctx context.Context, i int, topic string) (Reply, error) {
	body := make([]byte, 0, c.size+len(topic)+32)
	body = append(body, `{"topic":"`...)
	body = append(body, topic...)
	body = append(body, `","data":`...)
	body = c.Payload.appendData(body, time.Now().UnixNano(), c.size, i)
	body = append(body, '}')
	url := c.urls[max(i, 0)%len(c.urls)]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Reply{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Reply{}, &StatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		return Reply{}, fmt.Errorf("publish: bad reply %q: %w", b, err)
	}
	return r, nil
}

// Plan says what to publish.
type Plan struct {
	// Topics are published to round-robin: message i goes to Topics[i%len]
	// (through endpoint i mod the client's endpoints).
	Topics []string
	// Count bounds the messages (0: no bound, Duration must be set).
	Count int
	// Duration bounds the publishing time (0: no bound, Count must be set).
	Duration time.Duration
	// Rate is messages per second over all publishers; 0 is as fast as the
	// publishers go.
	Rate float64
	// Publishers is the number of concurrent publishers (at least 1).
	Publishers int
}

// Result is what the publishers did.
type Result struct {
	// Sent counts publishes answered 200.
	Sent int64 `json:"sent"`
	// Errors counts failed publishes by cause.
	Errors stats.Causes `json:"errors,omitempty"`
	// Recipients sums the replies' recipients: the deliveries expected
	// from one server. With several endpoints in a cluster each node
	// counts only its own subscribers, so the sum falls short.
	Recipients int64 `json:"recipients"`
	// LastSeq is the highest seq per topic (index as in Plan.Topics).
	LastSeq []uint64 `json:"last_seq"`
	// Elapsed is the publishing time.
	Elapsed time.Duration `json:"elapsed_ns"`
	// API is the publish round-trip latency.
	API *stats.Hist `json:"-"`
}

// Progress is read by the sampler while publishers run.
type Progress struct {
	// Sent and Failed count publishes so far.
	Sent, Failed atomic.Int64
}

// Run publishes per plan until it is done or ctx ends.
func (c *Client) Run(ctx context.Context, plan Plan, prog *Progress) (*Result, error) {
	if len(plan.Topics) == 0 {
		return nil, errors.New("publish: no topics")
	}
	if plan.Count <= 0 && plan.Duration <= 0 {
		return nil, errors.New("publish: neither a count nor a duration")
	}
	if prog == nil {
		prog = &Progress{}
	}
	pubs := max(plan.Publishers, 1)
	start := time.Now()
	var end time.Time
	if plan.Duration > 0 {
		end = start.Add(plan.Duration)
	}
	var next atomic.Int64
	var mu sync.Mutex
	res := &Result{Errors: stats.Causes{}, LastSeq: make([]uint64, len(plan.Topics)), API: stats.NewHist()}
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hist := stats.NewHist()
			errs := stats.Causes{}
			last := make([]uint64, len(plan.Topics))
			var sent, recips int64
			for {
				i := next.Add(1) - 1
				if plan.Count > 0 && i >= int64(plan.Count) {
					break
				}
				if plan.Rate > 0 {
					at := start.Add(time.Duration(float64(i) / plan.Rate * float64(time.Second)))
					if !end.IsZero() && !at.Before(end) {
						break
					}
					if d := time.Until(at); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-ctx.Done():
						case <-t.C:
						}
						t.Stop()
					}
				}
				if ctx.Err() != nil || (!end.IsZero() && !time.Now().Before(end)) {
					break
				}
				ti := int(i % int64(len(plan.Topics)))
				t0 := time.Now()
				r, err := c.PublishVia(ctx, int(i), plan.Topics[ti])
				hist.Record(time.Since(t0))
				if err != nil {
					prog.Failed.Add(1)
					errs.Add(causeOf(err), 1)
					continue
				}
				prog.Sent.Add(1)
				sent++
				recips += r.Recipients
				last[ti] = max(last[ti], r.Seq)
			}
			mu.Lock()
			res.Sent += sent
			res.Recipients += recips
			res.Errors.Merge(errs)
			res.API.Merge(hist)
			for t, s := range last {
				res.LastSeq[t] = max(res.LastSeq[t], s)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, ctx.Err()
}

func causeOf(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("http_%d", se.Code)
	}
	return wsclient.Classify(err)
}
