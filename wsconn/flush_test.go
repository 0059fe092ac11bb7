package wsconn

import (
	"fmt"
	"testing"
	"time"

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
	for !c.w.claimIdle() {
		if time.Now().After(deadline) {
			t.Fatal("the write side stayed busy")
		}
		time.Sleep(time.Millisecond)
	}
	if c.w.releaseClaim(nil) {
		t.Fatal("frames were queued while the write side was claimed")
	}
}
