package wsconn

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

// bigFrame is large enough that a client that does not read fills the
// kernel's socket buffers after a few dozen frames.
const bigFrame = 256 << 10

// maxFlood bounds the frames sent while waiting for the queue to overflow
// (100 MiB, far beyond any loopback socket buffering).
const maxFlood = 400

func TestQueueOrder(t *testing.T) {
	for _, mode := range []WriterMode{WriterOnDemand, WriterPersistent} {
		t.Run(mode.String(), func(t *testing.T) {
			ts := startServer(t, Config{Writer: mode}, nil)
			c, rec := ts.dialRec(t)
			const n = 50
			for i := range n {
				if !rec.conn.Send(textFrame(fmt.Sprintf("seq-%d", i))) {
					t.Fatalf("Send %d dropped", i)
				}
			}
			for i := range n {
				got, err := c.ReadText(waitShort)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want := fmt.Sprintf("seq-%d", i); got != want {
					t.Fatalf("frame %d = %q, want %q", i, got, want)
				}
			}
			st := ts.srv.Stats()
			waitStat(t, "Delivered", &st.Delivered, n)
			waitQueuedEmpty(t, ts)
			if d := st.Dropped(); d != 0 {
				t.Fatalf("Dropped = %d", d)
			}
		})
	}
}

// TestQueueReplyOrder: replies and deliveries keep their relative order.
func TestQueueReplyOrder(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c, rec := ts.dialRec(t)
	var want []string
	for i := range 20 {
		s := fmt.Sprintf("data-%d", i)
		if i%3 == 0 {
			s = fmt.Sprintf("reply-%d", i)
			rec.conn.SendReply([]byte(s))
		} else {
			rec.conn.Send(textFrame(s))
		}
		want = append(want, s)
	}
	for i, w := range want {
		got, err := c.ReadText(waitShort)
		if err != nil || got != w {
			t.Fatalf("frame %d = %q, %v; want %q", i, got, err, w)
		}
	}
}

// flood sends big frames (frame i carries seq i) to a connection whose
// client does not read. First it fills the socket: it sends one frame at a
// time and waits for the writer to take it, until the writer stops taking
// frames because the kernel's buffers are full (or after 64 frames, 16 MiB,
// far more than loopback buffers hold). Then it sends without waiting until
// stop reports true (called with every Send's result) and extra more. It
// returns Send's result for every frame.
func flood(t *testing.T, conn *Conn, stop func(ok bool) bool, extra int) []bool {
	t.Helper()
	var sent []bool
	next := func() bool {
		if len(sent) == maxFlood {
			t.Fatalf("the queue did not overflow after %d frames of %d bytes", maxFlood, bigFrame)
		}
		ok := conn.Send(dataFrame(uint64(len(sent)), bigFrame))
		sent = append(sent, ok)
		return ok
	}
	taken := func() error {
		if n := conn.Pending(); n != 0 {
			return fmt.Errorf("%d frames pending", n)
		}
		return nil
	}
	// The first frame is always taken: the socket is empty.
	if !next() {
		t.Fatal("first Send dropped")
	}
	testutil.CheckFor(t, waitShort, time.Millisecond, taken)
	for len(sent) < 64 {
		if !next() {
			t.Fatalf("Send %d dropped while filling the socket", len(sent)-1)
		}
		// A writer that does not take a frame within this time is blocked on
		// the full socket. Guessing wrong only makes the socket less full.
		deadline := time.Now().Add(200 * time.Millisecond)
		for taken() != nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if taken() != nil {
			break
		}
	}
	t.Logf("socket filled after %d frames (%d MiB)", len(sent), len(sent)*bigFrame>>20)
	for !stop(next()) {
	}
	for range extra {
		next()
	}
	return sent
}

func TestQueueDropNewest(t *testing.T) {
	ts := startServer(t, Config{SendQueue: 4, SlowPolicy: DropNewest}, nil)
	st := ts.srv.Stats()
	c, rec := ts.dialRec(t)
	sent := flood(t, rec.conn, func(bool) bool { return st.DroppedNewest.Load() > 0 }, 8)

	var accepted []uint64
	var refused int64
	for i, ok := range sent {
		if ok {
			accepted = append(accepted, uint64(i))
		} else {
			refused++
		}
	}
	if !sent[0] || !sent[1] {
		t.Fatalf("the first frames were dropped: %v", sent[:2])
	}
	if got := st.DroppedNewest.Load(); got != refused || refused == 0 {
		t.Fatalf("DroppedNewest = %d, Send refused %d", got, refused)
	}
	// Exactly the accepted frames arrive, in Send order.
	for _, want := range accepted {
		if got := readSeq(t, c, bigFrame); got != want {
			t.Fatalf("got seq %d, want %d (accepted %v)", got, want, accepted)
		}
	}
	if skipped := barrier(t, c); len(skipped) != 0 {
		t.Fatalf("unexpected frames: %v", skipped)
	}
	waitStat(t, "Delivered", &st.Delivered, int64(len(accepted)))
	waitQueuedEmpty(t, ts)
	if got := st.Delivered.Load() + st.DroppedNewest.Load(); got != int64(len(sent)) {
		t.Fatalf("Delivered+DroppedNewest = %d, want %d sent", got, len(sent))
	}
	if st.DroppedOldest.Load() != 0 || st.DroppedClose.Load() != 0 || st.LostClosed.Load() != 0 {
		t.Fatalf("other drops: oldest %d close %d lost %d", st.DroppedOldest.Load(), st.DroppedClose.Load(), st.LostClosed.Load())
	}
}

func TestQueueDropOldest(t *testing.T) {
	const queue = 4
	ts := startServer(t, Config{SendQueue: queue, SlowPolicy: DropOldest}, nil)
	st := ts.srv.Stats()
	c, rec := ts.dialRec(t)
	sent := flood(t, rec.conn, func(bool) bool { return st.DroppedOldest.Load() > 0 }, 8)
	for i, ok := range sent {
		if !ok {
			t.Fatalf("Send %d reported a drop; drop-oldest always queues the new frame", i)
		}
	}
	n := uint64(len(sent))
	// Read until the newest frame, which is never dropped.
	var got []uint64
	for len(got) == 0 || got[len(got)-1] != n-1 {
		seq := readSeq(t, c, bigFrame)
		if len(got) > 0 && seq <= got[len(got)-1] {
			t.Fatalf("seq %d after %d: out of order", seq, got[len(got)-1])
		}
		got = append(got, seq)
	}
	if skipped := barrier(t, c); len(skipped) != 0 {
		t.Fatalf("unexpected frames: %v", skipped)
	}
	// The newest SendQueue frames all arrived.
	if len(got) < queue {
		t.Fatalf("received %v", got)
	}
	for i, seq := range got[len(got)-queue:] {
		if want := n - queue + uint64(i); seq != want {
			t.Fatalf("the newest frames were not kept: received tail %v", got[len(got)-queue:])
		}
	}
	if got[0] != 0 {
		t.Fatalf("the first frame (taken by the writer at once) was dropped: received %v", got)
	}
	waitStat(t, "Delivered", &st.Delivered, int64(len(got)))
	waitQueuedEmpty(t, ts)
	if dropped := st.DroppedOldest.Load(); dropped+int64(len(got)) != int64(n) || dropped == 0 {
		t.Fatalf("DroppedOldest %d + received %d != sent %d", dropped, len(got), n)
	}
	if st.DroppedNewest.Load() != 0 || st.DroppedClose.Load() != 0 || st.LostClosed.Load() != 0 {
		t.Fatalf("other drops: newest %d close %d lost %d", st.DroppedNewest.Load(), st.DroppedClose.Load(), st.LostClosed.Load())
	}
}

func TestQueueCloseSlow(t *testing.T) {
	ts := startServer(t, Config{SendQueue: 4, SlowPolicy: CloseSlow}, nil)
	st := ts.srv.Stats()
	c, rec := ts.dialRec(t)
	// Flood until the first refused Send: that one closed the connection.
	sent := flood(t, rec.conn, func(ok bool) bool { return !ok }, 0)
	n := len(sent)
	if sent[n-1] {
		t.Fatalf("flood stopped without a refused Send")
	}
	for i, ok := range sent[:n-1] {
		if !ok {
			t.Fatalf("Send %d refused before the overflow", i)
		}
	}
	// Once closing, Send refuses and counts the frame as lost.
	if rec.conn.Send(dataFrame(uint64(n), bigFrame)) {
		t.Fatal("Send after the slow close reported success")
	}
	if got := st.LostClosed.Load(); got != 1 {
		t.Fatalf("LostClosed = %d, want 1", got)
	}
	// The client gets what the writer had taken, in order, then 1008.
	var got []uint64
	for {
		h, p, err := c.Read(waitLong)
		if err != nil {
			t.Fatalf("reading: %v (received %v)", err, got)
		}
		if h.OpCode == ws.OpClose {
			if code := int(p[0])<<8 | int(p[1]); code != 1008 || string(p[2:]) != "slow consumer" {
				t.Fatalf("close %d %q, want 1008 \"slow consumer\"", code, p[2:])
			}
			break
		}
		seq := getSeq(p)
		if len(got) > 0 && seq <= got[len(got)-1] {
			t.Fatalf("seq %d after %d: out of order", seq, got[len(got)-1])
		}
		got = append(got, seq)
	}
	expectEOF(t, c)
	send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1008, "")})
	waitClosed(t, rec)
	waitStat(t, "SlowClosed", &st.SlowClosed, 1)
	waitStat(t, "Delivered", &st.Delivered, int64(len(got)))
	waitQueuedEmpty(t, ts)
	if dc := st.DroppedClose.Load(); dc < 1 || dc+int64(len(got)) != int64(n) {
		t.Fatalf("DroppedClose %d + received %d != sent %d", dc, len(got), n)
	}
	if st.CloseSent(closeSlot(1008)) != 1 {
		t.Fatalf("CloseSent(1008) = %d", st.CloseSent(closeSlot(1008)))
	}
}

// TestQueueCloseSlowControl: a connection that never reads its pongs is
// closed as slow once more than twice SendQueue frames are pending.
func TestQueueCloseSlowControl(t *testing.T) {
	ts := startServer(t, Config{SendQueue: 2}, nil)
	st := ts.srv.Stats()
	_, rec := ts.dialRec(t)
	// Fill the socket with data so the writer blocks, then pile up replies.
	flood(t, rec.conn, func(bool) bool { return st.DroppedOldest.Load() > 0 }, 0)
	for i := 0; rec.conn.SendReply([]byte("reply")); i++ {
		if i > 100 {
			t.Fatal("replies never refused")
		}
	}
	waitStat(t, "SlowClosed", &st.SlowClosed, 1)
}

func TestWriterPersistent(t *testing.T) {
	ts := startServer(t, Config{Writer: WriterPersistent}, nil)
	st := ts.srv.Stats()
	const conns = 3
	var cs []*wstest.Client
	var recs []*connRec
	for range conns {
		c, rec := ts.dialRec(t)
		cs, recs = append(cs, c), append(recs, rec)
	}
	waitStat(t, "Writers", &st.Writers, conns)
	for round := range 3 {
		for i, rec := range recs {
			if !rec.conn.Send(textFrame(fmt.Sprintf("r%d-c%d", round, i))) {
				t.Fatal("Send dropped")
			}
		}
		for i, c := range cs {
			got, err := c.ReadText(waitShort)
			if want := fmt.Sprintf("r%d-c%d", round, i); err != nil || got != want {
				t.Fatalf("round %d conn %d: %q %v, want %q", round, i, got, err, want)
			}
		}
		// Idle again: the writers stay, one per connection.
		waitQueuedEmpty(t, ts)
		if got := st.Writers.Load(); got != conns {
			t.Fatalf("Writers = %d while idle, want %d", got, conns)
		}
	}
	// Pongs and the closing handshake go through the same writer.
	if skipped := barrier(t, cs[0]); len(skipped) != 0 {
		t.Fatalf("unexpected frames %v", skipped)
	}
	recs[0].conn.Close()
	expectClose(t, cs[0], 1000, "")
	cs[0].Close()
	waitClosed(t, recs[0])
	waitStat(t, "Writers", &st.Writers, conns-1)
}

// TestWriterPersistentIdleGoroutine: one writer per connection right after
// the upgrade, gone after the connection is torn down.
func TestWriterPersistentIdleGoroutine(t *testing.T) {
	ts := startServer(t, Config{Writer: WriterPersistent}, nil)
	st := ts.srv.Stats()
	var cs []*wstest.Client
	for range 3 {
		cs = append(cs, ts.dial(t))
	}
	waitStat(t, "Writers", &st.Writers, 3)
	for _, c := range cs {
		c.Close()
	}
	waitOpen(t, ts, 0)
	waitStat(t, "Writers", &st.Writers, 0)
}

func TestWriterOnDemand(t *testing.T) {
	ts := startServer(t, Config{Writer: WriterOnDemand}, nil)
	st := ts.srv.Stats()
	var cs []*wstest.Client
	var recs []*connRec
	for range 3 {
		c, rec := ts.dialRec(t)
		cs, recs = append(cs, c), append(recs, rec)
	}
	// After the 101 is written, an idle connection has no writer.
	waitStat(t, "Writers", &st.Writers, 0)
	for round := range 3 {
		for i, rec := range recs {
			for j := range 5 {
				rec.conn.Send(textFrame(fmt.Sprintf("r%d-c%d-%d", round, i, j)))
			}
		}
		for i, c := range cs {
			for j := range 5 {
				got, err := c.ReadText(waitShort)
				if want := fmt.Sprintf("r%d-c%d-%d", round, i, j); err != nil || got != want {
					t.Fatalf("%q %v, want %q", got, err, want)
				}
			}
		}
		waitStat(t, "Writers", &st.Writers, 0)
	}
	testutil.CheckFor(t, waitShort, pollEvery, func() error {
		for _, rec := range recs {
			if n := rec.conn.Pending(); n != 0 {
				return fmt.Errorf("Pending = %d", n)
			}
		}
		return nil
	})
}

// TestWriteTimeout: a writer that cannot write for WriteTimeout tears the
// connection down; every frame is accounted for.
func TestWriteTimeout(t *testing.T) {
	ts := startServer(t, Config{WriteTimeout: time.Second}, nil)
	st := ts.srv.Stats()
	_, rec := ts.dialRec(t)
	sent := flood(t, rec.conn, func(bool) bool { return true }, 3)
	cause := waitClosed(t, rec)
	if !errors.Is(cause, os.ErrDeadlineExceeded) {
		t.Fatalf("OnClose cause %v, want a deadline error", cause)
	}
	waitStat(t, "WriteErrors", &st.WriteErrors, 1)
	waitQueuedEmpty(t, ts)
	waitStat(t, "Writers", &st.Writers, 0)
	if st.LostClosed.Load() == 0 {
		t.Fatal("LostClosed = 0: the frames of the stuck write were not counted")
	}
	if got := st.Delivered.Load() + st.LostClosed.Load() + st.Dropped(); got != int64(len(sent)) {
		t.Fatalf("Delivered %d + LostClosed %d + Dropped %d != sent %d",
			st.Delivered.Load(), st.LostClosed.Load(), st.Dropped(), len(sent))
	}
}

// TestQueueGrows: a queue starts in a queueSmall slice, moves to a queueCap
// one when it outgrows it, and past that grows like any slice; order is
// kept across each move, also for entries put at the front (the 101
// response, a partial write's rest).
func TestQueueGrows(t *testing.T) {
	tests := []struct {
		n       int // entries added at the back
		front   bool
		wantCap int // 0: more than queueCap (grown by append)
	}{
		{n: 1, wantCap: queueSmall},
		{n: queueSmall, wantCap: queueSmall},
		{n: queueSmall + 1, wantCap: queueCap},
		{n: queueSmall, front: true, wantCap: queueCap},
		{n: queueSmall - 1, front: true, wantCap: queueSmall},
		{n: queueCap + 1, wantCap: 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("n=%d front=%v", tc.n, tc.front), func(t *testing.T) {
			var w writer
			frames := make([]*bpool.Frame, tc.n+1)
			for i := range frames {
				frames[i] = &bpool.Frame{}
			}
			for _, f := range frames[1:] {
				w.addLocked(entry{f: f, kind: kindData}, false)
			}
			want := frames[1:]
			if tc.front {
				w.addLocked(entry{f: frames[0], kind: kindRaw}, true)
				want = frames
			}
			got := *w.items
			if len(got) != len(want) {
				t.Fatalf("%d entries, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].f != want[i] {
					t.Fatalf("entry %d out of order", i)
				}
			}
			if c := cap(got); c != tc.wantCap && (tc.wantCap != 0 || c <= queueCap) {
				t.Fatalf("cap %d, want %d (0: more than %d)", c, tc.wantCap, queueCap)
			}
			putEntries(w.items)
		})
	}
}
