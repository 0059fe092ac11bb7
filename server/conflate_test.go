package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/wsconn"
)

// Per-topic slow-consumer policies (--topic-policy) end to end: real
// clients on real sockets that stop reading.

// mustTopicPolicy parses a --topic-policy value.
func mustTopicPolicy(t *testing.T, s string) TopicPolicy {
	t.Helper()
	p, err := ParseTopicPolicy(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// slowConn is a connection config for clients that stop reading: small
// queues, and no ping, idle or write timeout that would close them for
// another reason than the one under test while the publishes go on.
func slowConn(queue int) wsconn.Config {
	return wsconn.Config{SendQueue: queue, MaxMessage: 1 << 20, WriteTimeout: 10 * time.Minute,
		PingInterval: -1, IdleTimeout: -1}
}

// publishN publishes {"n":n,"p":payload} to topic and returns the answer.
func publishN(t *testing.T, s *Server, topic string, n int, payload string) publishReply {
	t.Helper()
	status, body := postPublish(t, s, fmt.Sprintf(`{"topic":%q,"data":{"n":%d,"p":%q}}`, topic, n, payload))
	if status != http.StatusOK {
		t.Fatalf("publish %d to %s: %d %s", n, topic, status, body)
	}
	var r publishReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("publish reply %q: %v", body, err)
	}
	return r
}

// nDelivery is a delivery of publishN's data.
type nDelivery struct {
	Topic string
	Seq   uint64
	Data  struct{ N uint64 }
}

// readUntil reads deliveries of topic until seq last and checks that
// their seqs strictly increase and each carries the data published with
// its seq (publish n took seq n). It returns how many it read.
func readUntil(c *wstest.Client, topic string, last uint64) (int, error) {
	var prev uint64
	for n := 1; ; n++ {
		m, err := c.ReadText(30 * time.Second)
		if err != nil {
			return n - 1, fmt.Errorf("after seq %d (%d read), waiting for %d: %w", prev, n-1, last, err)
		}
		var d nDelivery
		if err := json.Unmarshal([]byte(m), &d); err != nil || d.Topic != topic {
			return n, fmt.Errorf("delivery %.80q: %v", m, err)
		}
		if d.Seq <= prev || d.Data.N != d.Seq || d.Seq > last {
			return n, fmt.Errorf("seq %d (data n %d) after seq %d, want increasing seqs up to %d with their own data", d.Seq, d.Data.N, prev, last)
		}
		prev = d.Seq
		if d.Seq == last {
			return n, nil
		}
	}
}

// TestConflateNeverReadingClient: a client that does not read while
// thousands of messages of a conflated topic go out holds at most one of
// them queued at any time, and once it reads it gets increasing seqs
// ending with the last publish; every publish was either written or
// replaced (counted in wspush_conflated_total), none dropped.
func TestConflateNeverReadingClient(t *testing.T) {
	const msgs = 2000
	payload := strings.Repeat("p", 16<<10) // 32 MiB in all: far beyond the socket buffers
	s := startServer(t, Config{TopicPolicy: mustTopicPolicy(t, "prices.*=conflate"), Conn: slowConn(16)})
	c := dial(t, s, "/ws?topics=prices.x")
	var last publishReply
	for i := 1; i <= msgs; i++ {
		last = publishN(t, s, "prices.x", i, payload)
		if q := s.ws.Queued(); q > 1 {
			t.Fatalf("after publish %d: %d frames queued, want at most 1 (the topic's latest)", i, q)
		}
	}
	if last.Seq != msgs {
		t.Fatalf("last publish took seq %d, want %d", last.Seq, msgs)
	}
	st := s.Stats()
	conflated := st.Conflated.Load()
	if conflated == 0 {
		t.Fatal("nothing conflated: the client's socket never filled")
	}
	fam := scrape(t, s)["wspush_conflated_total"]
	if fam == nil || fam.GetMetric()[0].GetCounter().GetValue() != float64(conflated) {
		t.Fatalf("wspush_conflated_total = %v, want %d", fam, conflated)
	}
	got, err := readUntil(c, "prices.x", msgs)
	if err != nil {
		t.Fatal(err)
	}
	if int64(got)+conflated != msgs || st.Conflated.Load() != conflated {
		t.Fatalf("read %d + conflated %d (now %d) != %d published", got, conflated, st.Conflated.Load(), msgs)
	}
	if d := st.Dropped(); d != 0 {
		t.Fatalf("%d dropped: a conflated topic alone never fills the queue", d)
	}
	t.Logf("read %d of %d, %d replaced", got, msgs, conflated)
}

// TestConflateSlowReader: a client that reads slower than a conflated
// topic is published sees strictly increasing seqs ending with the last
// publish, whatever it skipped.
func TestConflateSlowReader(t *testing.T) {
	const msgs = 1000
	payload := strings.Repeat("s", 4<<10)
	s := startServer(t, Config{TopicPolicy: mustTopicPolicy(t, "chat.*=close,scores.*=conflate"), Conn: slowConn(4)})
	c := dial(t, s, "/ws?topics=scores.m")
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := readUntilSlowly(c, "scores.m", msgs)
		done <- result{n, err}
	}()
	for i := 1; i <= msgs; i++ {
		publishN(t, s, "scores.m", i, payload)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	st := s.Stats()
	if int64(r.n)+st.Conflated.Load() != msgs || st.Dropped() != 0 {
		t.Fatalf("read %d + conflated %d != %d published (dropped %d)", r.n, st.Conflated.Load(), msgs, st.Dropped())
	}
	t.Logf("read %d of %d", r.n, msgs)
}

// readUntilSlowly is readUntil with a pause before each read: a reader
// slower than the publisher.
func readUntilSlowly(c *wstest.Client, topic string, last uint64) (int, error) {
	var prev uint64
	for n := 1; ; n++ {
		time.Sleep(time.Millisecond)
		m, err := c.ReadText(30 * time.Second)
		if err != nil {
			return n - 1, fmt.Errorf("after seq %d, waiting for %d: %w", prev, last, err)
		}
		var d nDelivery
		if err := json.Unmarshal([]byte(m), &d); err != nil || d.Topic != topic {
			return n, fmt.Errorf("delivery %.80q: %v", m, err)
		}
		if d.Seq <= prev || d.Data.N != d.Seq {
			return n, fmt.Errorf("seq %d (data n %d) after seq %d: want strictly increasing seqs with their own data", d.Seq, d.Data.N, prev)
		}
		if prev = d.Seq; prev == last {
			return n, nil
		}
	}
}

// TestTopicPolicyClose: a topic whose policy is close closes its slow
// subscriber with 1008, while a slow subscriber of another topic on the
// same server stays open under the server's drop-oldest and gets the
// newest message.
func TestTopicPolicyClose(t *testing.T) {
	const maxRounds = 2000
	payload := strings.Repeat("c", 32<<10)
	s := startServer(t, Config{TopicPolicy: mustTopicPolicy(t, "chat.*=close,prices.*=conflate"), Conn: slowConn(8)})
	chat := dial(t, s, "/ws?topics=chat.room")
	feed := dial(t, s, "/ws?topics=feed")
	st := s.Stats()
	n := 0
	for st.SlowClosed.Load() == 0 || st.DroppedOldest.Load() == 0 {
		if n++; n > maxRounds {
			t.Fatalf("after %d rounds: slow closes %d, drop-oldest %d", maxRounds, st.SlowClosed.Load(), st.DroppedOldest.Load())
		}
		publishN(t, s, "feed", n, payload)
		if st.SlowClosed.Load() == 0 {
			publishN(t, s, "chat.room", n, payload)
		}
	}
	cf, err := chat.ExpectClose(30 * time.Second)
	if err != nil || cf.Code != 1008 || cf.Reason != "slow consumer" {
		t.Fatalf("chat client: close %v, %v; want 1008 slow consumer", cf, err)
	}
	if _, err := readUntil(feed, "feed", uint64(n)); err != nil {
		t.Fatalf("feed client: %v", err)
	}
	if err := feed.WriteText(`{"op":"subscribe","topics":["more"],"id":9}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, feed); r.Op != "ack" || r.ID == nil || *r.ID != 9 {
		t.Fatalf("feed client after the drain: %+v, want its ack: still open", r)
	}
	if st.SlowClosed.Load() != 1 || st.DroppedClose.Load() == 0 || st.Conflated.Load() != 0 {
		t.Fatalf("slow closes %d, dropped by close %d, conflated %d; want 1, >0, 0",
			st.SlowClosed.Load(), st.DroppedClose.Load(), st.Conflated.Load())
	}
}

// TestConflatePositions: the positions of a conflated topic say
// "conflate":true, in the subscribed frame and in a subscribe ack; other
// topics' and a user's stream's do not, whatever the globs.
func TestConflatePositions(t *testing.T) {
	// The token allows topics a and b; "*" would match the user's stream
	// if globs applied to it.
	s := startServer(t, Config{TopicPolicy: mustTopicPolicy(t, "a=conflate,b=close,*=conflate"), JWTSecret: userSecret})
	c := dial(t, s, "/ws?topics=a,b&positions=1&token="+userToken(t, "ann"))
	m, err := c.ReadText(readWait)
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	if err := json.Unmarshal([]byte(m), &r); err != nil || r.Op != "subscribed" || len(r.Positions) != 3 {
		t.Fatalf("first frame %s, want subscribed with 3 positions", m)
	}
	for name, want := range map[string]bool{"a": true, "b": false, "@ann": false} {
		if got := r.Positions[name].Conflate; got != want {
			t.Errorf("subscribed %s: conflate %v, want %v (%s)", name, got, want, m)
		}
	}
	if k := strings.Count(m, `"conflate":true`); k != 1 {
		t.Fatalf("subscribed %s: %d conflate members, want 1", m, k)
	}
	c2 := dial(t, s, "/ws?token="+userToken(t, ""))
	if err := c2.WriteText(`{"op":"subscribe","topics":["b","a"],"id":4}`); err != nil {
		t.Fatal(err)
	}
	ack := readReply(t, c2)
	if ack.Op != "ack" || len(ack.Positions) != 2 || !ack.Positions["a"].Conflate || ack.Positions["b"].Conflate {
		t.Fatalf("ack %+v, want a conflated and b not", ack)
	}
}

// TestConflateRecovery: recovery on a conflated topic works as on any
// topic: every missed message comes back, none replaced, then live ones.
func TestConflateRecovery(t *testing.T) {
	s := startServer(t, Config{HistorySize: 100, TopicPolicy: mustTopicPolicy(t, "prices.*=conflate"), Conn: slowConn(4)})
	var first publishReply
	for i := 1; i <= 20; i++ {
		r := publishN(t, s, "prices.x", i, "x")
		if i == 1 {
			first = r
		}
	}
	c := dial(t, s, "/ws?topics=prices.x&since=prices.x:"+first.Epoch+":2")
	r := readReply(t, c)
	if r.Op != "subscribed" || !r.Recovered["prices.x"] || r.Positions["prices.x"].Seq != 20 || !r.Positions["prices.x"].Conflate {
		t.Fatalf("first frame %+v, want recovered, seq 20, conflate", r)
	}
	for i := 21; i <= 25; i++ {
		publishN(t, s, "prices.x", i, "x")
	}
	// 18 recovered messages, more than the queue holds, then live ones,
	// which may be conflated: increasing seqs up to 25.
	wantSeqs(t, readDeliveries(t, c, "prices.x", 18), 3, 20)
	if _, err := readUntil(c, "prices.x", 25); err != nil {
		t.Fatal(err)
	}
}
