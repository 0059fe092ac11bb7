package wsconn

import (
	"fmt"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wstest"
)

// TestBatchOneWritePerConnection: frames sent to idle connections inside a
// batch wait for its end, then each connection gets them all, in order, in
// one write, and no writer goroutine starts.
func TestBatchOneWritePerConnection(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	const conns, frames = 3, 50
	clients, recs := make([]*wstest.Client, conns), make([]*connRec, conns)
	for i := range clients {
		clients[i], recs[i] = ts.dialRec(t)
		barrier(t, clients[i]) // the 101 and the pong are out
		waitWriteIdle(t, recs[i].conn)
	}
	st := ts.srv.Stats()
	writes := st.Writes.Load()
	ts.srv.BeginBatch()
	for i := range frames {
		for _, rec := range recs {
			if !rec.conn.Send(textFrame(fmt.Sprintf("m-%d", i))) {
				t.Fatalf("Send %d dropped", i)
			}
		}
	}
	if got := st.Writes.Load() - writes; got != 0 {
		t.Fatalf("%d writes before the batch ended, want 0", got)
	}
	ts.srv.EndBatch()
	for ci, c := range clients {
		for i := range frames {
			got, err := c.ReadText(waitShort)
			if err != nil {
				t.Fatalf("client %d frame %d: %v", ci, i, err)
			}
			if want := fmt.Sprintf("m-%d", i); got != want {
				t.Fatalf("client %d frame %d = %q, want %q", ci, i, got, want)
			}
		}
	}
	waitStat(t, "Delivered", &st.Delivered, conns*frames)
	if got := st.Writes.Load() - writes; got != conns {
		t.Fatalf("%d writes for %d frames to %d connections, want one per connection", got, frames, conns)
	}
	if n := st.Writers.Load(); n != 0 {
		t.Fatalf("%d writer goroutines running, want 0", n)
	}
}

// waitWriteIdle waits until nobody holds c's write side (the flusher that
// wrote the last frames gave it back).
func waitWriteIdle(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(waitShort)
	for !writeIdle(c) {
		if time.Now().After(deadline) {
			t.Fatal("the write side stayed busy")
		}
		time.Sleep(time.Millisecond)
	}
}

func writeIdle(c *Conn) bool {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.idleLocked()
}

// TestEndBatchPacesWhenBehind: with a queue left three quarters full (pressure), the
// end of a batch waits for a busy flusher's next round; without pressure
// it returns at once.
func TestEndBatchPacesWhenBehind(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	s := ts.srv
	f := &s.flushers[0]
	// Pose as a busy flusher with work listed (its goroutine sleeps: it
	// is never rung here).
	f.busy.Store(true)
	f.queued.Store(true)
	defer func() { f.busy.Store(false); f.queued.Store(false) }()

	s.BeginBatch()
	s.EndBatch() // no pressure: must not wait
	s.qpol.pressure.Store(true)
	s.BeginBatch()
	done := make(chan struct{})
	go func() {
		s.EndBatch()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("EndBatch returned while the flusher was behind and had not moved on")
	case <-time.After(50 * time.Millisecond):
	}
	f.mu.Lock()
	f.round++
	f.roundEnd.Broadcast()
	f.mu.Unlock()
	select {
	case <-done:
	case <-time.After(waitShort):
		t.Fatal("EndBatch still waiting after the flusher's next round")
	}
}

// TestPressureAtThreeQuarters: a push that leaves a queue three quarters
// of its limit deep (not one frame less) tells the batches to pace.
func TestPressureAtThreeQuarters(t *testing.T) {
	pol := &queuePolicy{limit: 64, pressureAt: 48, stats: &Stats{}}
	w := &writer{pol: pol, flags: wGated} // gated: nothing starts a writer
	for i := 0; i < 47; i++ {
		w.push(bpool.StaticFrame([]byte("x")), kindData)
	}
	if pol.pressure.Load() {
		t.Fatal("pressure at 47 of 64 queued")
	}
	w.push(bpool.StaticFrame([]byte("x")), kindData)
	if !pol.pressure.Load() {
		t.Fatal("no pressure at 48 of 64 queued")
	}
	w.close()
}
