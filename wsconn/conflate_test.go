package wsconn

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/slowpolicy"
)

// Per-frame queue policies: conflation and a delivery's own full-queue
// policy (bpool.Frame.Slow, Conflate), on the queue itself and through a
// socket.

// qstep is one operation on a test queue: a push, or (take) the writer
// taking everything queued.
type qstep struct {
	name    string // the frame's bytes, its name in want
	key     uint64 // bpool.Frame.Conflate
	slow    slowpolicy.Policy
	control bool // pushed as a reply (kindControl), else as a delivery
	take    bool // not a push: the writer takes the queue (written, released)
	want    pushResult
}

// step shorthands.
func data(name string, key uint64) qstep { return qstep{name: name, key: key} }
func reply(name string) qstep            { return qstep{name: name, control: true} }
func takeAll() qstep                     { return qstep{take: true} }

// gatedWriter is a queue whose upgrade is not finished: pushes queue
// without starting any writer, so a test sees exactly what push did.
func gatedWriter(limit int32, slow SlowPolicy) *writer {
	return &writer{
		pol:   &queuePolicy{limit: limit, slow: slow, stats: new(Stats), pressureAt: limit},
		flags: wGated,
	}
}

// queued names the frames in w's queue, in order, and checks nData.
func queued(t *testing.T, w *writer) []string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.items == nil {
		if w.nData != 0 {
			t.Fatalf("empty queue with nData %d", w.nData)
		}
		return nil
	}
	var out []string
	data := int32(0)
	for _, e := range *w.items {
		out = append(out, string(e.f.B))
		if e.kind == kindData {
			data++
		}
	}
	if data != w.nData {
		t.Fatalf("queue %v holds %d deliveries, nData says %d", out, data, w.nData)
	}
	return out
}

func TestQueueConflate(t *testing.T) {
	tests := []struct {
		name  string
		limit int32
		slow  SlowPolicy
		steps []qstep
		want  []string // the queue at the end, in order
		// counters at the end
		conflated, oldest, newest, closed int64
	}{
		{
			name:  "replaced in place",
			steps: []qstep{data("A1", 1), data("B1", 2), data("A2", 1)},
			want:  []string{"A2", "B1"}, conflated: 1,
		},
		{
			name:  "one per topic, topics keep their places",
			steps: []qstep{data("A1", 1), data("B1", 2), data("C1", 3), data("A2", 1), data("C2", 3), data("A3", 1), data("B2", 2)},
			want:  []string{"A3", "B2", "C2"}, conflated: 4,
		},
		{
			name:  "no queued message of the topic: queued at the back",
			steps: []qstep{data("A1", 1), data("B1", 2), data("P1", 0)},
			want:  []string{"A1", "B1", "P1"},
		},
		{
			name:  "plain deliveries are never conflated",
			steps: []qstep{data("P1", 0), data("P2", 0), data("P3", 0)},
			want:  []string{"P1", "P2", "P3"},
		},
		{
			// The reply must stay before a delivery published after it.
			name:  "a reply after it: the new one goes behind the reply",
			steps: []qstep{data("A1", 1), data("B1", 2), reply("R"), data("A2", 1)},
			want:  []string{"B1", "R", "A2"}, conflated: 1,
		},
		{
			name:  "a plain delivery after it: behind it, the others keep their order",
			steps: []qstep{data("P1", 0), data("A1", 1), data("P2", 0), data("A2", 1), data("P3", 0), data("A3", 1)},
			want:  []string{"P1", "P2", "P3", "A3"}, conflated: 2,
		},
		{
			name:  "a reply is never replaced, whatever it carries",
			steps: []qstep{{name: "K", key: 1, control: true}, data("A1", 1), data("A2", 1)},
			want:  []string{"K", "A2"}, conflated: 1,
		},
		{
			name:  "a reply before it changes nothing",
			steps: []qstep{reply("R"), data("A1", 1), data("A2", 1)},
			want:  []string{"R", "A2"}, conflated: 1,
		},
		{
			name:  "a message being written is not replaced",
			steps: []qstep{data("A1", 1), takeAll(), data("A2", 1), data("A3", 1)},
			want:  []string{"A3"}, conflated: 1,
		},
		{
			name: "a full queue: replacing drops nothing", limit: 2, slow: CloseSlow,
			steps: []qstep{data("A1", 1), data("B1", 2), data("A2", 1), data("B2", 2)},
			want:  []string{"A2", "B2"}, conflated: 2,
		},
		{
			name: "a full queue, nothing to replace: the server's drop-oldest", limit: 2, slow: DropOldest,
			steps: []qstep{data("P1", 0), data("A1", 1), data("B1", 2)},
			want:  []string{"A1", "B1"}, oldest: 1,
		},
		{
			name: "a full queue, nothing to replace: the server's drop-newest", limit: 2, slow: DropNewest,
			steps: []qstep{data("P1", 0), data("A1", 1), {name: "B1", key: 2, slow: slowpolicy.Conflate, want: refused}},
			want:  []string{"P1", "A1"}, newest: 1,
		},
		{
			name: "a full queue, nothing to replace: the server's close", limit: 2, slow: CloseSlow,
			steps: []qstep{data("P1", 0), data("P2", 0), {name: "A1", key: 1, slow: slowpolicy.Conflate, want: pushSlow}},
			want:  []string{"P1", "P2"}, closed: 1,
		},
		{
			name: "a topic's close beats the server's drop-oldest", limit: 2, slow: DropOldest,
			steps: []qstep{data("P1", 0), data("P2", 0), {name: "X", slow: slowpolicy.Close, want: pushSlow}, {name: "Y", slow: slowpolicy.Close, want: refused}},
			want:  []string{"P1", "P2"}, closed: 2,
		},
		{
			name: "a topic's drop-newest beats the server's drop-oldest", limit: 2, slow: DropOldest,
			steps: []qstep{data("P1", 0), data("P2", 0), {name: "X", slow: slowpolicy.DropNewest, want: refused}, data("P3", 0)},
			want:  []string{"P2", "P3"}, newest: 1, oldest: 1,
		},
		{
			name: "a topic's drop-oldest beats the server's close", limit: 2, slow: CloseSlow,
			steps: []qstep{data("P1", 0), data("P2", 0), {name: "X", slow: slowpolicy.DropOldest}},
			want:  []string{"P2", "X"}, oldest: 1,
		},
		{
			name: "a topic's default is the server's", limit: 1, slow: DropNewest,
			steps: []qstep{data("P1", 0), {name: "X", slow: slowpolicy.Default, want: refused}},
			want:  []string{"P1"}, newest: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 64
			}
			w := gatedWriter(limit, tt.slow)
			var frames []*bpool.Frame
			for i, s := range tt.steps {
				if s.take {
					items, _ := w.take()
					for _, e := range *items {
						e.f.Release()
					}
					putEntries(items)
					continue
				}
				f := bpool.NewFrame(len(s.name))
				f.B = append(f.B, s.name...)
				f.Conflate, f.Slow = s.key, s.slow
				if s.key != 0 && s.slow == slowpolicy.Default {
					f.Slow = slowpolicy.Conflate
				}
				f.Retain(1) // the test's own reference, to see the queue's go
				frames = append(frames, f)
				kind := kindData
				if s.control {
					kind = kindControl
				}
				if r := w.push(f, kind); r != s.want {
					t.Fatalf("step %d (%s): push = %d, want %d", i, s.name, r, s.want)
				}
			}
			if got := queued(t, w); !slices.Equal(got, tt.want) {
				t.Fatalf("queue %v, want %v", got, tt.want)
			}
			st := w.pol.stats
			for _, c := range []struct {
				name      string
				got, want int64
			}{
				{"Conflated", st.Conflated.Load(), tt.conflated},
				{"DroppedOldest", st.DroppedOldest.Load(), tt.oldest},
				{"DroppedNewest", st.DroppedNewest.Load(), tt.newest},
				{"DroppedClose", st.DroppedClose.Load(), tt.closed},
			} {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
				}
			}
			checkReleasedOnce(t, w, frames)
		})
	}
}

// checkReleasedOnce checks that the queue dropped exactly one reference to
// every frame it replaced, dropped or wrote, none too many, and holds one
// to every frame still queued: each frame holds the test's reference, so
// none may be recycled yet; after the queue is closed and the test drops
// its own, all must be.
func checkReleasedOnce(t *testing.T, w *writer, frames []*bpool.Frame) {
	t.Helper()
	names := make([]string, len(frames))
	for i, f := range frames {
		if f.B == nil {
			t.Fatalf("frame %d recycled while the test still holds it: released once too often", i)
		}
		names[i] = string(f.B)
	}
	w.close()
	for i, f := range frames {
		f.Release()
		if f.B != nil {
			t.Fatalf("frame %s not recycled after the last reference: the queue kept one (%s)", names[i], strings.Join(names, " "))
		}
	}
}

// TestQueueConflateOnSocket: deliveries queued before the upgrade ends
// (the gated queue, as a subscription made in Accept) are conflated per key
// and written in the queue's order, after the 101.
func TestQueueConflateOnSocket(t *testing.T) {
	const n = 50
	h := newTestHandler()
	h.accept = func(c *Conn, _ *Request) error {
		send := func(s string, key uint64) {
			f := textFrame(s)
			if key != 0 {
				f.Slow, f.Conflate = slowpolicy.Conflate, key
			}
			if !c.Send(f) {
				t.Errorf("Send(%s) refused", s)
			}
		}
		send("P0", 0)
		for i := 1; i <= n; i++ {
			send(fmt.Sprintf("A%d", i), 1)
			send(fmt.Sprintf("B%d", i), 2)
		}
		c.SendReply([]byte("R"))
		send(fmt.Sprintf("A%d", n+1), 1)
		return nil
	}
	ts := startServer(t, Config{SendQueue: 8}, h)
	c, _ := ts.dialRec(t)
	for _, want := range []string{"P0", fmt.Sprint("B", n), "R", fmt.Sprint("A", n+1)} {
		if got, err := c.ReadText(waitShort); err != nil || got != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if skipped := barrier(t, c); len(skipped) != 0 {
		t.Fatalf("unexpected frames %v", skipped)
	}
	st := ts.srv.Stats()
	waitStat(t, "Delivered", &st.Delivered, 3)
	if got, want := st.Conflated.Load(), int64(2*n-1); got != want {
		t.Fatalf("Conflated = %d, want %d", got, want)
	}
	if d := st.Dropped(); d != 0 {
		t.Fatalf("Dropped = %d", d)
	}
}
