package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/wsconn"
)

// TestMalformedCommandsCountAgainstRate: every message takes a token of
// --command-rate, malformed ones too; past the burst they get "limit", not
// a parse error each (which cost the server its parse and reply for free).
func TestMalformedCommandsCountAgainstRate(t *testing.T) {
	s := startServer(t, Config{Limits: Limits{CommandRate: 1}}) // burst 2
	c := dial(t, s, "/ws")
	const sent = 10
	for i := range sent {
		if err := c.WriteText(fmt.Sprintf(`{"op":"nope","id":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[string]int{}
	for i := range sent {
		r := readReply(t, c)
		if r.ID == nil || *r.ID != int64(i) {
			t.Fatalf("reply %d = %+v: want the command's id", i, r)
		}
		codes[r.Code]++
	}
	if codes["unknown_op"] != 2 || codes["limit"] != sent-2 {
		t.Fatalf("reply codes %v, want 2 unknown_op (the burst) and %d limit", codes, sent-2)
	}
}

// TestSubscribeAllOrNothing: a multi-topic subscribe that fails part-way
// leaves none of its topics subscribed.
func TestSubscribeAllOrNothing(t *testing.T) {
	s := startServer(t, Config{Limits: Limits{MaxSubscriptions: 2}})
	c := dial(t, s, "/ws?topics=kept")
	if err := c.WriteText(`{"op":"subscribe","topics":["a","b","c"],"id":1}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); r.Op != "error" || r.Code != "limit" || *r.ID != 1 {
		t.Fatalf("reply %+v, want error limit", r)
	}
	for _, topic := range []string{"a", "b"} {
		if r := publish(t, s, topic, `1`); r.Recipients != 0 {
			t.Fatalf("topic %s has %d subscribers after a failed subscribe", topic, r.Recipients)
		}
	}
	if r := publish(t, s, "kept", `1`); r.Recipients != 1 {
		t.Fatalf("the earlier subscription was lost: %d recipients", r.Recipients)
	}
	// One more fits: the failed command took nothing.
	if err := c.WriteText(`{"op":"subscribe","topics":["a"],"id":2}`); err != nil {
		t.Fatal(err)
	}
	for {
		if r := readReply(t, c); r.Topic == "" {
			if r.Op != "ack" || *r.ID != 2 {
				t.Fatalf("reply %+v, want ack 2", r)
			}
			break
		}
	}
}

// TestClientPublishExactlyOneReply: a client publish that fails gets its
// error and nothing else (it used to get an ack first, then the error).
func TestClientPublishExactlyOneReply(t *testing.T) {
	s := startServer(t, Config{ClientPublish: true, Limits: Limits{MaxTopics: 1}})
	c := dial(t, s, "/ws?topics=only")
	if err := c.WriteText(`{"op":"publish","topic":"fresh","data":1,"id":7}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); (r.Op != "ack" && r.Op != "error") || *r.ID != 7 {
		t.Fatalf("reply %+v, want one ack or error for id 7", r)
	}
	expectOnlyReply(t, c, 8)
}

// TestHandshakeAbortIsNotATimeout: a client that connects and leaves
// without an upgrade request is counted as "closed", never as "timeout".
func TestHandshakeAbortIsNotATimeout(t *testing.T) {
	s := startServer(t, Config{Conn: wsconn.Config{HandshakeTimeout: time.Minute}})
	for range 3 {
		dialRaw(t, s).Close()
	}
	// Wait for the three to be accepted and let go: Open is 0 also
	// before the accept loop took them.
	testutil.CheckFor(t, readWait, 5*time.Millisecond, func() error {
		st := s.Stats()
		if a, n := st.Accepted.Load(), st.Open.Load(); a < 3 || n != 0 {
			return fmt.Errorf("%d accepted, %d sockets still held", a, n)
		}
		return nil
	})
	body := get(t, "http://"+s.APIAddr().String()+"/metrics", 200)
	for _, want := range []string{`wspush_upgrade_failures_total{reason="closed"} 3`, `wspush_upgrade_failures_total{reason="timeout"} 0`} {
		if !strings.Contains(body, want) {
			t.Fatalf("want %s in:\n%s", want, grepLines(body, "upgrade_failures"))
		}
	}
}
