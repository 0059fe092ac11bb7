// Package enginetest is the one test suite every engine passes: the memory
// engine and the Redis engine run the same cases, so the hub can rely on
// the contract of engine.Engine whichever is behind it.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wspush/wspush/engine"
)

// Options is what a case asks of the engine under test.
type Options struct {
	HistorySize int
	HistoryTTL  time.Duration // zero: the engine's default
}

// Factory builds a fresh engine for one case, handing publications to h;
// the suite closes it at the end of the case. Topic names are unique per
// case, so engines that share a broker between cases do not collide.
type Factory func(t *testing.T, o Options, h engine.Handler) engine.Engine

// Recorder is an engine.Handler that keeps every publication, by topic.
type Recorder struct {
	mu   sync.Mutex
	pubs map[string][]engine.Publication
	cond *sync.Cond
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{pubs: make(map[string][]engine.Publication)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// HandlePublication implements engine.Handler; the data is copied.
func (r *Recorder) HandlePublication(p engine.Publication) engine.Delivery {
	p.Data = append([]byte(nil), p.Data...)
	r.mu.Lock()
	r.pubs[p.Topic] = append(r.pubs[p.Topic], p)
	r.cond.Broadcast()
	r.mu.Unlock()
	return engine.Delivery{}
}

// HandlePosition implements engine.Handler; positions are not recorded.
func (r *Recorder) HandlePosition(topic string, pos engine.Position) {}

// Wait returns the first n publications of topic, failing t if they do not
// all arrive within d.
func (r *Recorder) Wait(t testing.TB, topic string, n int, d time.Duration) []engine.Publication {
	t.Helper()
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() { r.mu.Lock(); r.cond.Broadcast(); r.mu.Unlock() })
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.pubs[topic]) < n {
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %d of %d publications within %v", topic, len(r.pubs[topic]), n, d)
		}
		r.cond.Wait()
	}
	return append([]engine.Publication(nil), r.pubs[topic][:n]...)
}

// Run runs every case against engines from f. How long a topic's run
// lasts without listeners and history is the engine's own (the memory
// engine ends it at once, a broker keeps it for a while): each engine tests
// that itself.
func Run(t *testing.T, f Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"listen_then_publications_in_order", listenInOrder},
		{"concurrent_publishers_consecutive_seqs", concurrentPublishers},
		{"history_within_size", historyWithinSize},
		{"history_beyond_size_not_recoverable", historyBeyondSize},
		{"history_other_epoch_not_recoverable", historyOtherEpoch},
		{"history_expires", historyExpires},
		{"history_keeps_the_run_after_unlisten", historyKeepsRun},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, f) })
	}
}

const wait = 5 * time.Second

func start(t *testing.T, f Factory, o Options) (engine.Engine, *Recorder, string) {
	t.Helper()
	r := NewRecorder()
	e := f(t, o, r)
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e, r, fmt.Sprintf("t.%s.%d", t.Name(), time.Now().UnixNano())
}

func publish(t *testing.T, e engine.Engine, topic string, data string) engine.Position {
	t.Helper()
	p, err := e.Publish(context.Background(), topic, []byte(data))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !engine.ValidEpoch(p.Pos.Epoch) {
		t.Fatalf("Publish: epoch %q is not 1-32 chars of [A-Za-z0-9_-]", p.Pos.Epoch)
	}
	return p.Pos
}

func listen(t *testing.T, e engine.Engine, topic string) engine.Position {
	t.Helper()
	pos, err := e.Listen(context.Background(), topic)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return pos
}

func listenInOrder(t *testing.T, f Factory) {
	e, r, topic := start(t, f, Options{})
	pos := listen(t, e, topic)
	if pos.Seq != 0 || !engine.ValidEpoch(pos.Epoch) {
		t.Fatalf("Listen on a new topic = %+v, want seq 0 and a valid epoch", pos)
	}
	for i := 1; i <= 20; i++ {
		if p := publish(t, e, topic, fmt.Sprint(i)); p != (engine.Position{Epoch: pos.Epoch, Seq: uint64(i)}) {
			t.Fatalf("publish %d = %+v", i, p)
		}
	}
	for i, p := range r.Wait(t, topic, 20, wait) {
		if p.Pos.Seq != uint64(i+1) || p.Pos.Epoch != pos.Epoch || string(p.Data) != fmt.Sprint(i+1) {
			t.Fatalf("publication %d = %+v %q", i, p.Pos, p.Data)
		}
	}
}

func concurrentPublishers(t *testing.T, f Factory) {
	const publishers, each = 4, 50
	e, r, topic := start(t, f, Options{})
	listen(t, e, topic)
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := e.Publish(context.Background(), topic, []byte(fmt.Sprintf(`"%d-%d"`, g, i))); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, p := range r.Wait(t, topic, publishers*each, wait) {
		if p.Pos.Seq != uint64(i+1) {
			t.Fatalf("publication %d has seq %d: the handler must see consecutive seqs in order", i, p.Pos.Seq)
		}
	}
}

func historyWithinSize(t *testing.T, f Factory) {
	e, _, topic := start(t, f, Options{HistorySize: 10})
	var last engine.Position
	for i := 1; i <= 10; i++ {
		last = publish(t, e, topic, fmt.Sprint(i))
	}
	pubs, err := e.History(context.Background(), topic, engine.Position{Epoch: last.Epoch, Seq: 3}, last.Seq)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(pubs) != 7 {
		t.Fatalf("History after 3 = %d publications, want 7", len(pubs))
	}
	for i, p := range pubs {
		if p.Pos.Seq != uint64(4+i) || string(p.Data) != fmt.Sprint(4+i) || p.Topic != topic {
			t.Fatalf("history %d = %+v %q", i, p.Pos, p.Data)
		}
	}
	if pubs, err := e.History(context.Background(), topic, last, last.Seq); err != nil || len(pubs) != 0 {
		t.Fatalf("History from the head = %d, %v; want none, nil", len(pubs), err)
	}
}

func historyBeyondSize(t *testing.T, f Factory) {
	e, _, topic := start(t, f, Options{HistorySize: 5})
	var last engine.Position
	for i := 1; i <= 10; i++ {
		last = publish(t, e, topic, fmt.Sprint(i))
	}
	if _, err := e.History(context.Background(), topic, engine.Position{Epoch: last.Epoch, Seq: 4}, last.Seq); !errors.Is(err, engine.ErrNotRecoverable) {
		t.Fatalf("History after 4 with 6..10 kept = %v, want ErrNotRecoverable", err)
	}
	if pubs, err := e.History(context.Background(), topic, engine.Position{Epoch: last.Epoch, Seq: 5}, last.Seq); err != nil || len(pubs) != 5 {
		t.Fatalf("History after 5 = %d, %v; want 5", len(pubs), err)
	}
}

func historyOtherEpoch(t *testing.T, f Factory) {
	e, _, topic := start(t, f, Options{HistorySize: 5})
	last := publish(t, e, topic, "1")
	if _, err := e.History(context.Background(), topic, engine.Position{Epoch: "other", Seq: 0}, last.Seq); !errors.Is(err, engine.ErrNotRecoverable) {
		t.Fatalf("History of another epoch = %v, want ErrNotRecoverable", err)
	}
}

func historyExpires(t *testing.T, f Factory) {
	e, _, topic := start(t, f, Options{HistorySize: 5, HistoryTTL: 300 * time.Millisecond})
	first := publish(t, e, topic, "1")
	time.Sleep(600 * time.Millisecond)
	last := publish(t, e, topic, "2")
	if last.Epoch == first.Epoch {
		if _, err := e.History(context.Background(), topic, engine.Position{Epoch: first.Epoch, Seq: 0}, last.Seq); !errors.Is(err, engine.ErrNotRecoverable) {
			t.Fatalf("History through an expired publication = %v, want ErrNotRecoverable", err)
		}
	}
	if pubs, err := e.History(context.Background(), topic, engine.Position{Epoch: last.Epoch, Seq: last.Seq - 1}, last.Seq); err != nil || len(pubs) != 1 {
		t.Fatalf("History of the fresh publication = %d, %v; want 1", len(pubs), err)
	}
}

func historyKeepsRun(t *testing.T, f Factory) {
	e, _, topic := start(t, f, Options{HistorySize: 5})
	pos := listen(t, e, topic)
	publish(t, e, topic, "1")
	e.Unlisten(topic)
	if p := publish(t, e, topic, "2"); p.Epoch != pos.Epoch || p.Seq != 2 {
		t.Fatalf("publish after unlisten with history kept = %+v, want seq 2 of %s", p, pos.Epoch)
	}
}
