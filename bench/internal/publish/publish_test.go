package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// fakeAPI numbers publishes per topic like the hub does.
func fakeAPI(t *testing.T, fail func(topic string) bool) (string, func()) {
	var mu sync.Mutex
	seqs := map[string]uint64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Topic string          `json:"topic"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &body); err != nil || check.SentTime(body.Data) == 0 {
			http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
			return
		}
		if fail != nil && fail(body.Topic) {
			http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
			return
		}
		mu.Lock()
		seqs[body.Topic]++
		s := seqs[body.Topic]
		mu.Unlock()
		fmt.Fprintf(w, `{"seq":%d,"recipients":2}`, s)
	}))
	return strings.TrimPrefix(srv.URL, "http://"), srv.Close
}

func TestRunCount(t *testing.T) {
	api, stop := fakeAPI(t, nil)
	defer stop()
	c := NewClient(api, 100, 3)
	defer c.Close()
	var prog Progress
	r, err := c.Run(context.Background(), Plan{Topics: []string{"a", "b"}, Count: 11, Publishers: 3}, &prog)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 11 || r.Recipients != 22 || r.LastSeq[0] != 6 || r.LastSeq[1] != 5 || len(r.Errors) != 0 {
		t.Fatalf("%+v", r)
	}
	if prog.Sent.Load() != 11 || r.API.Count() != 11 {
		t.Fatalf("progress %d, api samples %d", prog.Sent.Load(), r.API.Count())
	}
}

func TestRunDurationAndErrors(t *testing.T) {
	api, stop := fakeAPI(t, func(topic string) bool { return topic == "bad" })
	defer stop()
	c := NewClient(api, 10, 1)
	defer c.Close()
	r, err := c.Run(context.Background(), Plan{Topics: []string{"ok", "bad"}, Duration: 50 * time.Millisecond, Rate: 200}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent == 0 || r.Errors["http_500"] == 0 || r.LastSeq[1] != 0 {
		t.Fatalf("%+v", r)
	}
	if _, err := c.Run(context.Background(), Plan{Topics: []string{"a"}}, nil); err == nil {
		t.Fatal("an unbounded plan was accepted")
	}
}

func TestPublishBodyIsValid(t *testing.T) {
	api, stop := fakeAPI(t, nil)
	defer stop()
	c := NewClient(api, 5000, 1)
	defer c.Close()
	if _, err := c.Publish(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
}

func TestRunRoundRobinOverEndpoints(t *testing.T) {
	a, stopA := fakeAPI(t, nil)
	defer stopA()
	b, stopB := fakeAPI(t, nil)
	defer stopB()
	c := NewClient(a+", "+b, 10, 2)
	defer c.Close()
	if c.Endpoints() != 2 {
		t.Fatalf("%d endpoints", c.Endpoints())
	}
	r, err := c.Run(context.Background(), Plan{Topics: []string{"t"}, Count: 10, Publishers: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Each fake numbers its own publishes: 5 each means an even spread.
	if r.Sent != 10 || r.LastSeq[0] != 5 {
		t.Fatalf("sent %d, last seq %d (want 5 per endpoint)", r.Sent, r.LastSeq[0])
	}
}
