// Package peertest is the shared in-process test harness for the benchmark
// peers. It starts a peer's run function on 127.0.0.1:0, reads the LISTEN
// line, and drives it with real gorilla/websocket clients and HTTP
// publishes. All waiting is bounded by deadlines; nothing sleeps to
// synchronise.
package peertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// RunFunc is the testable entry point every peer exposes.
type RunFunc func(ctx context.Context, args []string, stdout io.Writer) error

// Timeout bounds every wait in the harness.
const Timeout = 20 * time.Second

// Peer is a running in-process peer.
type Peer struct {
	WS  string // host:port of the WebSocket listener
	API string // host:port of the HTTP API listener
}

// Start runs run with -listen and -api-listen on 127.0.0.1:0 plus extra
// args, waits for the LISTEN line and registers a cleanup that cancels the
// context and checks that run returned nil.
func Start(t testing.TB, run RunFunc, extra ...string) *Peer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args := append([]string{"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}, extra...)
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw)
		_ = pw.Close()
		done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br) // keep run from blocking on stdout
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(Timeout):
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Errorf("run did not return within %v of cancel; goroutines:\n%s", Timeout, buf.String())
		}
	})
	var line string
	select {
	case line = <-lines:
	case err := <-done:
		t.Fatalf("run exited before LISTEN line: %v", err)
	case <-time.After(Timeout):
		t.Fatalf("no LISTEN line within %v", Timeout)
	}
	var p Peer
	if _, err := fmt.Sscanf(line, "LISTEN ws=%s api=%s\n", &p.WS, &p.API); err != nil {
		t.Fatalf("bad LISTEN line %q: %v", line, err)
	}
	if want := fmt.Sprintf("LISTEN ws=%s api=%s\n", p.WS, p.API); line != want {
		t.Fatalf("LISTEN line %q, want exactly %q", line, want)
	}
	return &p
}

// Dial opens a WebSocket subscribed to topics (raw query value).
func (p *Peer) Dial(topics string) (*websocket.Conn, *http.Response, error) {
	u := url.URL{Scheme: "ws", Host: p.WS, Path: "/ws", RawQuery: "topics=" + url.QueryEscape(topics)}
	d := websocket.Dialer{HandshakeTimeout: Timeout}
	return d.Dial(u.String(), nil)
}

// MustDial is Dial that fails the test on error and closes on cleanup.
func (p *Peer) MustDial(t testing.TB, topics string) *websocket.Conn {
	t.Helper()
	c, _, err := p.Dial(topics)
	if err != nil {
		t.Fatalf("dial %q: %v", topics, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// PublishRaw POSTs body to /api/publish and returns status and body.
func (p *Peer) PublishRaw(t testing.TB, body string) (int, []byte) {
	t.Helper()
	client := http.Client{Timeout: Timeout}
	resp, err := client.Post("http://"+p.API+"/api/publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("publish body: %v", err)
	}
	return resp.StatusCode, b
}

// PublishResult is the API's success reply.
type PublishResult struct {
	Seq        uint64 `json:"seq"`
	Recipients int    `json:"recipients"`
}

// Publish publishes data (raw JSON) to topic and requires a 200.
func (p *Peer) Publish(t testing.TB, topic, data string) PublishResult {
	t.Helper()
	status, b := p.PublishRaw(t, `{"topic":"`+topic+`","data":`+data+`}`)
	if status != http.StatusOK {
		t.Fatalf("publish %s: status %d body %s", topic, status, b)
	}
	var r PublishResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("publish reply %q: %v", b, err)
	}
	return r
}

// Delivery is one decoded server message.
type Delivery struct {
	Topic string          `json:"topic"`
	Seq   uint64          `json:"seq"`
	Data  json.RawMessage `json:"data"`
}

// Read reads one text message (with a deadline) and decodes it.
func Read(t testing.TB, c *websocket.Conn) Delivery {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(Timeout))
	typ, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d, want text", typ)
	}
	var d Delivery
	if err := json.Unmarshal(msg, &d); err != nil {
		t.Fatalf("decode %q: %v", msg, err)
	}
	want := fmt.Sprintf(`{"topic":%q,"seq":%d,"data":%s}`, d.Topic, d.Seq, d.Data)
	if string(msg) != want {
		t.Fatalf("message %q is not in the exact wire form %q", msg, want)
	}
	return d
}

// Eventually polls cond until it holds or Timeout passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(wait)
	}
}

// ProtocolSuite runs the shared protocol checks against run.
func ProtocolSuite(t *testing.T, run RunFunc, extra ...string) {
	t.Run("Delivery", func(t *testing.T) { testDelivery(t, Start(t, run, extra...)) })
	t.Run("BadTopic", func(t *testing.T) { testBadTopic(t, Start(t, run, extra...)) })
	t.Run("PublishErrors", func(t *testing.T) { testPublishErrors(t, Start(t, run, extra...)) })
	t.Run("PingAndClose", func(t *testing.T) { testPingAndClose(t, Start(t, run, extra...)) })
}

// payloads are the five published data values: odd whitespace, unicode,
// escapes, a >125-byte (16-bit length) and a >64 KiB (64-bit length) frame.
func payloads() []string {
	mid := `{"pad":"` + strings.Repeat("m", 300) + `"}`
	big := `["` + strings.Repeat("x", 70_000) + `"]`
	return []string{
		`{ "n" : 1,  "ok":true }`,
		`"h\u00e9llo \"w\" ☃"`,
		`[1, 2.50, -3e2, null]`,
		mid,
		big,
	}
}

func testDelivery(t *testing.T, p *Peer) {
	const clients = 3
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = p.MustDial(t, "news,other")
	}
	bystander := p.MustDial(t, "sports")
	data := payloads()
	for i, d := range data {
		r := p.Publish(t, "news", d)
		if r.Seq != uint64(i+1) || r.Recipients != clients {
			t.Fatalf("publish %d: got %+v, want seq %d recipients %d", i, r, i+1, clients)
		}
	}
	for ci, c := range conns {
		for i, d := range data {
			got := Read(t, c)
			if got.Topic != "news" || got.Seq != uint64(i+1) || !bytes.Equal(got.Data, []byte(d)) {
				t.Fatalf("client %d message %d: got topic %q seq %d data %.80q, want news %d %.80q",
					ci, i, got.Topic, got.Seq, got.Data, i+1, d)
			}
		}
	}
	// seq is per topic and advances with no subscribers.
	if r := p.Publish(t, "empty.topic", `1`); r.Seq != 1 || r.Recipients != 0 {
		t.Fatalf("empty topic publish 1: %+v", r)
	}
	if r := p.Publish(t, "empty.topic", `2`); r.Seq != 2 || r.Recipients != 0 {
		t.Fatalf("empty topic publish 2: %+v", r)
	}
	// The bystander only ever sees its own topic.
	if r := p.Publish(t, "sports", `"goal"`); r.Seq != 1 || r.Recipients != 1 {
		t.Fatalf("sports publish: %+v", r)
	}
	if got := Read(t, bystander); got.Topic != "sports" || got.Seq != 1 || string(got.Data) != `"goal"` {
		t.Fatalf("bystander got %+v", got)
	}
	// A second topic on the same connections interleaves with its own seq.
	if r := p.Publish(t, "other", `{}`); r.Seq != 1 || r.Recipients != clients {
		t.Fatalf("other publish: %+v", r)
	}
	if r := p.Publish(t, "news", `6`); r.Seq != 6 {
		t.Fatalf("news publish 6: %+v", r)
	}
	for ci, c := range conns {
		if a, b := Read(t, c), Read(t, c); a.Topic != "other" || a.Seq != 1 || b.Topic != "news" || b.Seq != 6 {
			t.Fatalf("client %d: got %+v then %+v", ci, a, b)
		}
	}
}

func testBadTopic(t *testing.T, p *Peer) {
	for _, topics := range []string{"", "bad topic", "a,,b", "ok,bad/slash", strings.Repeat("t", 129)} {
		c, resp, err := p.Dial(topics)
		if err == nil {
			_ = c.Close()
			t.Fatalf("dial %q: upgraded, want 400", topics)
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusBadRequest {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("dial %q: err %v status %d, want 400", topics, err, status)
		}
	}
	// The longest legal name still works.
	c := p.MustDial(t, strings.Repeat("T", 128)+",a-b_c.d:e")
	if r := p.Publish(t, "a-b_c.d:e", `true`); r.Recipients != 1 {
		t.Fatalf("publish to legal name: %+v", r)
	}
	if got := Read(t, c); got.Topic != "a-b_c.d:e" || string(got.Data) != "true" {
		t.Fatalf("got %+v", got)
	}
}

func testPublishErrors(t *testing.T, p *Peer) {
	for _, body := range []string{
		`{"topic":"a","data":`,           // truncated JSON
		`not json`,                       // not JSON
		`{"topic":"a"}`,                  // no data
		`{"topic":"","data":1}`,          // empty topic
		`{"topic":"a b","data":1}`,       // bad char
		`{"topic":"a","data":1} trail`,   // trailing garbage
		`{"topic":["a"],"data":{"x":1}}`, // wrong type
	} {
		status, b := p.PublishRaw(t, body)
		var e struct {
			Error string `json:"error"`
		}
		if status != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Fatalf("body %q: status %d reply %q, want 400 with {\"error\":...}", body, status, b)
		}
	}
	// Rejected publishes do not consume a seq.
	if r := p.Publish(t, "a", `1`); r.Seq != 1 {
		t.Fatalf("first good publish: %+v", r)
	}
}

func testPingAndClose(t *testing.T, p *Peer) {
	c := p.MustDial(t, "pc")
	stay := p.MustDial(t, "pc")
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error {
		select {
		case pong <- s:
		default:
		}
		return nil
	})
	// Client text frames are ignored.
	if err := c.WriteMessage(websocket.TextMessage, []byte("ignored")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(Timeout)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		t.Fatal(err)
	}
	// Read until the echoed close; the pong arrives before it.
	var closeErr *websocket.CloseError
	for {
		_ = c.SetReadDeadline(time.Now().Add(Timeout))
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !errors.As(err, &closeErr) {
			t.Fatalf("read after close: %v, want close frame echo", err)
		}
		break
	}
	if closeErr.Code != websocket.CloseNormalClosure {
		t.Fatalf("close echo code %d, want 1000", closeErr.Code)
	}
	select {
	case s := <-pong:
		if s != "hi" {
			t.Fatalf("pong payload %q", s)
		}
	default:
		t.Fatal("no pong before close echo")
	}
	// The closed connection is unsubscribed; the other keeps receiving.
	var last uint64
	Eventually(t, "closed client to be unsubscribed", func() bool {
		r := p.Publish(t, "pc", `"x"`)
		last = r.Seq
		return r.Recipients == 1
	})
	for want := uint64(1); want <= last; want++ {
		if got := Read(t, stay); got.Seq != want {
			t.Fatalf("remaining client: seq %d, want %d", got.Seq, want)
		}
	}
}
