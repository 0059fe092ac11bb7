package server

import (
	"fmt"
	"sync"
	"testing"

	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/wsconn"
)

// readDeliveries reads n deliveries of topic and returns their seqs.
func readDeliveries(t *testing.T, c *wstest.Client, topic string, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for len(seqs) < n {
		r := readReply(t, c)
		if r.Topic != topic {
			t.Fatalf("after %d deliveries of %s: got %+v", len(seqs), topic, r)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// wantSeqs fails unless got is from..to, each once, in order.
func wantSeqs(t *testing.T, got []uint64, from, to uint64) {
	t.Helper()
	for i, seq := range got {
		if seq != from+uint64(i) {
			t.Fatalf("seqs %v: want %d..%d with no gap and no duplicate", got, from, to)
		}
	}
	if uint64(len(got)) != to-from+1 {
		t.Fatalf("seqs %v: want %d..%d", got, from, to)
	}
}

// TestSubscribeAckPositions: a subscribe with an id is answered with each
// topic's position: the seq it took effect at, and the run's epoch (also
// for a topic never published to, seq 0).
func TestSubscribeAckPositions(t *testing.T) {
	s := startServer(t, Config{HistorySize: 10})
	var last publishReply
	for range 3 {
		last = publish(t, s, "p", `1`)
	}
	c := dial(t, s, "/ws")
	if err := c.WriteText(`{"op":"subscribe","topics":["p","fresh"],"id":1}`); err != nil {
		t.Fatal(err)
	}
	r := readReply(t, c)
	if r.Op != "ack" || len(r.Positions) != 2 || r.Recovered != nil {
		t.Fatalf("ack %+v, want positions for 2 topics and no recovered", r)
	}
	if p := r.Positions["p"]; p.Seq != 3 || p.Epoch != last.Epoch {
		t.Fatalf("position of p = %+v, want seq 3 of %s", p, last.Epoch)
	}
	fresh := r.Positions["fresh"]
	if fresh.Seq != 0 || fresh.Epoch == "" {
		t.Fatalf("position of a never published topic = %+v, want seq 0 with its epoch", fresh)
	}
	if got := publish(t, s, "fresh", `1`); got.Epoch != fresh.Epoch || got.Seq != 1 {
		t.Fatalf("first publish to fresh = %+v, want seq 1 of %s", got, fresh.Epoch)
	}
	wantSeqs(t, readDeliveries(t, c, "fresh", 1), 1, 1)
}

// TestRecoverByCommand: a client that resumes from a position still in
// history gets the ack with recovered:true, then exactly the missed
// messages, then live ones; from a position history no longer reaches, it
// gets recovered:false and only live ones.
func TestRecoverByCommand(t *testing.T) {
	s := startServer(t, Config{HistorySize: 5})
	tests := []struct {
		name      string
		back      uint64 // resume this many messages before the head
		recovered bool
	}{
		{"within_history", 3, true},
		{"at_the_head", 0, true},
		{"whole_history", 5, true},
		{"beyond_history", 6, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var head publishReply
			for range 8 {
				head = publish(t, s, "r", `1`)
			}
			c := dial(t, s, "/ws")
			cmd := fmt.Sprintf(`{"op":"subscribe","topics":["r"],"id":%d,"since":{"r":{"epoch":%q,"seq":%d}}}`, i, head.Epoch, head.Seq-tt.back)
			if err := c.WriteText(cmd); err != nil {
				t.Fatal(err)
			}
			r := readReply(t, c)
			if r.Op != "ack" || r.Recovered["r"] != tt.recovered || r.Positions["r"].Seq != head.Seq {
				t.Fatalf("ack %+v, want recovered %v at seq %d", r, tt.recovered, head.Seq)
			}
			live := publish(t, s, "r", `"live"`)
			from := head.Seq + 1
			if tt.recovered {
				from = head.Seq - tt.back + 1
			}
			wantSeqs(t, readDeliveries(t, c, "r", int(live.Seq-from+1)), from, live.Seq)
			c.Close()
		})
	}
}

// TestRecoverOtherEpoch: a position of another run is never recovered.
func TestRecoverOtherEpoch(t *testing.T) {
	s := startServer(t, Config{HistorySize: 5})
	publish(t, s, "e", `1`)
	c := dial(t, s, "/ws")
	if err := c.WriteText(`{"op":"subscribe","topics":["e"],"id":1,"since":{"e":{"epoch":"gone","seq":0}}}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); r.Op != "ack" || r.Recovered["e"] {
		t.Fatalf("ack %+v, want recovered false", r)
	}
}

// TestRecoverAtConnect: since in the query gives the subscribed frame
// first, then the missed messages, then live ones; positions=1 gives the
// frame without recovery; a since topic missing from topics is a 400.
func TestRecoverAtConnect(t *testing.T) {
	s := startServer(t, Config{HistorySize: 10})
	var first publishReply
	for i := range 4 {
		if r := publish(t, s, "a:b", fmt.Sprint(i)); i == 0 {
			first = r
		}
	}
	c := dial(t, s, "/ws?topics=a:b,other&since=a:b:"+first.Epoch+":1")
	r := readReply(t, c)
	if r.Op != "subscribed" || !r.Recovered["a:b"] || len(r.Recovered) != 1 || r.Positions["a:b"].Seq != 4 || r.Positions["other"].Epoch == "" {
		t.Fatalf("first frame %+v, want subscribed with a:b recovered at 4 and other's position", r)
	}
	live := publish(t, s, "a:b", `"live"`)
	wantSeqs(t, readDeliveries(t, c, "a:b", 4), 2, live.Seq)

	p := dial(t, s, "/ws?topics=a:b&positions=1")
	if r := readReply(t, p); r.Op != "subscribed" || r.Positions["a:b"].Seq != 5 || r.Recovered != nil {
		t.Fatalf("first frame %+v, want subscribed at seq 5 without recovered", r)
	}
	if st := dialStatus(t, s, "/ws?topics=x&since=y:E:1", nil); st != 400 {
		t.Fatalf("since for a topic not in topics: status %d, want 400", st)
	}
}

// TestRecoverWhilePublishing: clients resume while a publisher publishes
// flat out; each sees every seq after its position exactly once, in order:
// the switch from recovered to live has no gap and no duplicate.
func TestRecoverWhilePublishing(t *testing.T) {
	const total, clients = 2000, 20
	// A queue deep enough that the flat-out publisher never makes a reader
	// drop (that would be a slow consumer, not a recovery gap).
	s := startServer(t, Config{HistorySize: total, Conn: wsconn.Config{SendQueue: 2 * total}})
	first := publish(t, s, "hot", `0`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < total; i++ {
			if _, err := s.publish("hot", []byte(fmt.Sprint(i))); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range clients {
		c := dial(t, s, "/ws")
		since := uint64(i * 10)
		if err := c.WriteText(fmt.Sprintf(`{"op":"subscribe","topics":["hot"],"id":1,"since":{"hot":{"epoch":%q,"seq":%d}}}`, first.Epoch, since)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := readReply(t, c)
			if r.Op != "ack" || !r.Recovered["hot"] {
				t.Errorf("client %d: ack %+v, want recovered", i, r)
				return
			}
			got := readDeliveries(t, c, "hot", int(total-since))
			wantSeqs(t, got, since+1, total)
		}()
	}
	wg.Wait()
	<-done
}

// TestRecoverMoreThanTheQueue: recovering far more messages than the send
// queue holds drops none of them (they go out as one queue entry).
func TestRecoverMoreThanTheQueue(t *testing.T) {
	s := startServer(t, Config{HistorySize: 500, Conn: wsconn.Config{SendQueue: 8}})
	first := publish(t, s, "big", `0`)
	for i := 1; i < 400; i++ {
		publish(t, s, "big", fmt.Sprint(i))
	}
	c := dial(t, s, fmt.Sprintf("/ws?topics=big&since=big:%s:0", first.Epoch))
	if r := readReply(t, c); r.Op != "subscribed" || !r.Recovered["big"] {
		t.Fatalf("first frame %+v, want subscribed, recovered", r)
	}
	wantSeqs(t, readDeliveries(t, c, "big", 400), 1, 400)
	if d := s.Stats().Dropped(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
}
