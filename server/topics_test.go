package server

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/wspush/wspush/internal/wstest"
)

// Topic lifetime as clients and the API see it.

// epochRE is the documented epoch alphabet and length (docs/protocol.md).
var epochRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// command sends one command carrying id and expects its ack.
func command(t *testing.T, c *wstest.Client, id int, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if err := c.WriteText(msg); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); r.Op != "ack" || r.ID == nil || *r.ID != int64(id) {
		t.Fatalf("%s: reply %+v, want ack %d", msg, r, id)
	}
}

// TestTopicChurnDoesNotExhaustMaxTopics is the reported bug: with
// --max-topics 10, 20 subscribe/unsubscribe cycles of fresh names used up
// the cap, and then a publish to a fresh topic answered 503.
func TestTopicChurnDoesNotExhaustMaxTopics(t *testing.T) {
	const maxTopics = 10
	s := startServer(t, Config{Limits: Limits{MaxTopics: maxTopics}})
	c := dial(t, s, "/ws")
	for i := 0; i < 2*maxTopics; i++ {
		command(t, c, 2*i, `{"op":"subscribe","topics":["fresh%d"],"id":%d}`, i, 2*i)
		command(t, c, 2*i+1, `{"op":"unsubscribe","topics":["fresh%d"],"id":%d}`, i, 2*i+1)
	}
	if n := s.Hub().Topics(); n != 0 {
		t.Fatalf("%d topics exist after every subscription ended, want 0", n)
	}
	status, body := postPublish(t, s, `{"topic":"never-subscribed","data":1}`)
	if status != http.StatusOK {
		t.Fatalf("publish to a fresh topic after the churn: %d %s, want 200", status, body)
	}
	// Subscribing to fresh names still works, and a publish reaches it.
	command(t, c, 100, `{"op":"subscribe","topics":["after"],"id":100}`)
	if r := publish(t, s, "after", `2`); r.Recipients != 1 || r.Seq != 1 {
		t.Fatalf("publish after the churn = %+v, want seq 1 to 1 recipient", r)
	}
	if got := readReply(t, c); got.Topic != "after" || got.Seq != 1 {
		t.Fatalf("delivery %+v, want seq 1 of after", got)
	}
}

func TestPublishWithoutSubscribersCreatesNoTopic(t *testing.T) {
	s := startServer(t, Config{})
	epochs := map[string]bool{}
	for i := 1; i <= 3; i++ {
		r := publish(t, s, "lonely", `null`)
		if r.Seq != 1 || r.Recipients != 0 || !epochRE.MatchString(r.Epoch) || epochs[r.Epoch] {
			t.Fatalf("publish %d = %+v, want seq 1 of a fresh epoch and no recipients", i, r)
		}
		epochs[r.Epoch] = true
	}
	if n := s.Hub().Topics(); n != 0 {
		t.Fatalf("%d topics exist after publishes nobody subscribed to, want 0", n)
	}
	c := dial(t, s, "/ws?topics=lonely")
	r := publish(t, s, "lonely", `"late"`)
	if r.Seq != 1 || r.Recipients != 1 || epochs[r.Epoch] {
		t.Fatalf("first publish to the subscribed topic = %+v, want seq 1 of a new epoch", r)
	}
	if got, _ := c.ReadText(readWait); got != `{"topic":"lonely","seq":1,"data":"late"}` {
		t.Fatalf("got %q", got)
	}
}

// TestRecreatedTopicAnswersNewEpoch: the API answer tells a re-created
// topic (seq back at 1) apart from the one before it.
func TestRecreatedTopicAnswersNewEpoch(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	var prev string
	for run := 0; run < 3; run++ {
		command(t, c, 1, `{"op":"subscribe","topics":["r"],"id":1}`)
		for want := uint64(1); want <= 2; want++ {
			r := publish(t, s, "r", `1`)
			if r.Seq != want || r.Recipients != 1 || !epochRE.MatchString(r.Epoch) || r.Epoch == prev {
				t.Fatalf("run %d: answer %+v, want seq %d of a new epoch (previous %q)", run, r, want, prev)
			}
			if e, seq, ok := s.Hub().Position("r"); !ok || e != r.Epoch || seq != want {
				t.Fatalf("run %d: Position = %q, %d, %v; want the answer's", run, e, seq, ok)
			}
			if want == 2 {
				prev = r.Epoch
			}
			if got := readReply(t, c); got.Seq != want {
				t.Fatalf("run %d: delivery seq %d, want %d", run, got.Seq, want)
			}
		}
		command(t, c, 2, `{"op":"unsubscribe","topics":["r"],"id":2}`)
	}
}
