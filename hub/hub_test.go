package hub_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// delivery is one decoded frame as a subscriber saw it.
type delivery struct {
	Topic string          `json:"topic"`
	Seq   uint64          `json:"seq"`
	Data  json.RawMessage `json:"data"`
	frame *bpool.Frame
}

// decodeFrame parses a server text frame built by protocol.NewDeliveryFrame.
func decodeFrame(b []byte) (delivery, error) {
	if len(b) < 2 || b[0] != 0x81 {
		return delivery{}, fmt.Errorf("not a final text frame: % x", b[:min(len(b), 2)])
	}
	hdr := 2
	switch b[1] {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	var d delivery
	if err := json.Unmarshal(b[hdr:], &d); err != nil {
		return delivery{}, fmt.Errorf("payload %q: %w", b[hdr:], err)
	}
	return d, nil
}

// recSub is a Subscriber that records what it is sent. It releases every
// frame at once unless hold is set (then it keeps queued frames until
// releaseAll); a frame it refuses (accept false) is always released.
type recSub struct {
	name   string
	accept bool
	hold   bool

	mu    sync.Mutex
	got   []delivery
	held  []*bpool.Frame
	errs  []error
	sends int
}

func newRecSub(name string) *recSub { return &recSub{name: name, accept: true} }

func (s *recSub) Send(f *bpool.Frame) bool {
	d, err := decodeFrame(f.B)
	s.mu.Lock()
	s.sends++
	if err != nil {
		s.errs = append(s.errs, err)
	} else {
		d.frame = f
		s.got = append(s.got, d)
	}
	keep := s.accept && s.hold
	if keep {
		s.held = append(s.held, f)
	}
	s.mu.Unlock()
	if !keep {
		f.Release()
	}
	return s.accept
}

func (s *recSub) deliveries(t testing.TB) []delivery {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.errs {
		t.Errorf("%s: bad frame: %v", s.name, err)
	}
	return slices.Clone(s.got)
}

func (s *recSub) seqs(t testing.TB) []uint64 {
	var out []uint64
	for _, d := range s.deliveries(t) {
		out = append(out, d.Seq)
	}
	return out
}

func (s *recSub) releaseAll() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, f := range held {
		f.Release()
	}
}

// noopSub releases what it is given. It is not zero-sized so that distinct
// subscribers are distinct map keys.
type noopSub struct{ id int }

func (s *noopSub) Send(f *bpool.Frame) bool {
	f.Release()
	return true
}

// countingEncoder wraps protocol.NewDeliveryFrame and remembers the frames
// it built.
type countingEncoder struct {
	mu     sync.Mutex
	frames []*bpool.Frame
}

func (e *countingEncoder) encode(topic string, seq uint64, data []byte) *bpool.Frame {
	f := protocol.NewDeliveryFrame(topic, seq, data)
	e.mu.Lock()
	e.frames = append(e.frames, f)
	e.mu.Unlock()
	return f
}

func (e *countingEncoder) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.frames)
}

func (e *countingEncoder) last() *bpool.Frame {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.frames) == 0 {
		return nil
	}
	return e.frames[len(e.frames)-1]
}

func mustSubscribe(t testing.TB, h *hub.Hub, topic string, s hub.Subscriber) *hub.Topic {
	t.Helper()
	tp, err := h.Subscribe(topic, s)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	return tp
}

func mustPublish(t testing.TB, h *hub.Hub, topic, data string) hub.Result {
	t.Helper()
	r, err := h.Publish(topic, []byte(data))
	if err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
	return r
}

func TestSeqAndPosition(t *testing.T) {
	enc := &countingEncoder{}
	h := mustHub(hub.Config{}, enc.encode)
	if e, seq, ok := h.Position("t"); ok || e != "" || seq != 0 {
		t.Fatalf("Position of a missing topic = %q, %d, %v; want not found", e, seq, ok)
	}
	if h.Topics() != 0 {
		t.Fatalf("Position created a topic: Topics() = %d", h.Topics())
	}
	tp := mustSubscribe(t, h, "t", &noopSub{})
	if e, seq, ok := h.Position("t"); !ok || e != tp.Epoch() || seq != 0 {
		t.Fatalf("Position of a new topic = %q, %d, %v; want %q, 0, true", e, seq, ok, tp.Epoch())
	}
	for want := uint64(1); want <= 5; want++ {
		r := mustPublish(t, h, "t", `1`)
		if r.Seq != want || r.Epoch != tp.Epoch() || r.Recipients != 1 || r.Queued != 1 {
			t.Fatalf("publish %d: result %+v, want seq %d of epoch %q", want, r, want, tp.Epoch())
		}
		if e, seq, ok := h.Position("t"); !ok || e != tp.Epoch() || seq != want {
			t.Fatalf("Position = %q, %d, %v; want %q, %d, true", e, seq, ok, tp.Epoch(), want)
		}
	}
	if n := enc.count(); n != 5 {
		t.Errorf("encoder called %d times for 5 publishes, want 5", n)
	}
	// Another topic has its own sequence and epoch.
	u := mustSubscribe(t, h, "u", &noopSub{})
	if r := mustPublish(t, h, "u", `1`); r.Seq != 1 || r.Epoch != u.Epoch() || r.Epoch == tp.Epoch() {
		t.Errorf("first publish of a second topic = %+v, want seq 1 of its own epoch", r)
	}
	if h.Topics() != 2 {
		t.Errorf("Topics() = %d, want 2", h.Topics())
	}
}

func TestPublishDelivers(t *testing.T) {
	h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
	a, b := newRecSub("a"), newRecSub("b")
	mustSubscribe(t, h, "news", a)
	mustPublish(t, h, "other", `0`) // no cross-talk; creates nothing
	mustSubscribe(t, h, "news", b)
	mustSubscribe(t, h, "other", b)

	r1 := mustPublish(t, h, "news", `{"b":1,"a":1.50}`)
	r2 := mustPublish(t, h, "other", `"x"`)
	r3 := mustPublish(t, h, "news", `[2]`)
	if r1.Seq != 1 || r2.Seq != 1 || r3.Seq != 2 {
		t.Fatalf("seqs = %d, %d, %d, want 1, 1, 2", r1.Seq, r2.Seq, r3.Seq)
	}
	tests := []struct {
		name string
		sub  *recSub
		want []delivery
	}{
		{name: "a", sub: a, want: []delivery{
			{Topic: "news", Seq: 1, Data: json.RawMessage(`{"b":1,"a":1.50}`)},
			{Topic: "news", Seq: 2, Data: json.RawMessage(`[2]`)},
		}},
		{name: "b", sub: b, want: []delivery{
			{Topic: "news", Seq: 1, Data: json.RawMessage(`{"b":1,"a":1.50}`)},
			{Topic: "other", Seq: 1, Data: json.RawMessage(`"x"`)},
			{Topic: "news", Seq: 2, Data: json.RawMessage(`[2]`)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.sub.deliveries(t)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d deliveries, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Topic != w.Topic || g.Seq != w.Seq || string(g.Data) != string(w.Data) {
					t.Errorf("delivery %d = {%s %d %s}, want {%s %d %s}", i, g.Topic, g.Seq, g.Data, w.Topic, w.Seq, w.Data)
				}
			}
		})
	}
}

func TestPublishResultCounts(t *testing.T) {
	tests := []struct {
		name   string
		accept []bool // one subscriber per entry
	}{
		{name: "none", accept: nil},
		{name: "one_queues", accept: []bool{true}},
		{name: "one_drops", accept: []bool{false}},
		{name: "mixed", accept: []bool{true, false, true, true, false}},
		{name: "all_drop", accept: []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
			wantQueued := 0
			var subs []*recSub
			for i, acc := range tt.accept {
				s := newRecSub(fmt.Sprint(i))
				s.accept = acc
				subs = append(subs, s)
				mustSubscribe(t, h, "t", s)
				if acc {
					wantQueued++
				}
			}
			for round := 1; round <= 3; round++ {
				r := mustPublish(t, h, "t", `{}`)
				wantSeq := uint64(round)
				if len(tt.accept) == 0 {
					wantSeq = 1 // no topic: every publish is seq 1 of a fresh epoch
				}
				checkEpoch(t, r.Epoch)
				want := hub.Result{Seq: wantSeq, Epoch: r.Epoch, Recipients: len(tt.accept), Queued: wantQueued}
				if r != want {
					t.Fatalf("round %d: result %+v, want %+v", round, r, want)
				}
			}
			for _, s := range subs {
				if got := s.seqs(t); !slices.Equal(got, []uint64{1, 2, 3}) {
					t.Errorf("subscriber %s (accept=%v) was offered seqs %v, want [1 2 3]", s.name, s.accept, got)
				}
			}
		})
	}
}

func TestSubscribeTwiceIsNoop(t *testing.T) {
	h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
	s := newRecSub("s")
	t1 := mustSubscribe(t, h, "t", s)
	t2 := mustSubscribe(t, h, "t", s)
	if t1 != t2 {
		t.Fatal("Subscribe returned different topics for the same name")
	}
	if t1.Name() != "t" {
		t.Errorf("Name() = %q, want t", t1.Name())
	}
	if n := t1.Len(); n != 1 {
		t.Fatalf("Len() = %d after subscribing twice, want 1", n)
	}
	if r := mustPublish(t, h, "t", `1`); r.Recipients != 1 || r.Queued != 1 {
		t.Fatalf("result %+v, want one recipient", r)
	}
	if got := s.seqs(t); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("subscriber saw %v, want [1] (once)", got)
	}
	if !t1.Unsubscribe(s) {
		t.Fatal("Unsubscribe after double subscribe = false")
	}
	if t1.Unsubscribe(s) {
		t.Fatal("second Unsubscribe = true: double subscribe left two entries")
	}
	if h.Topics() != 0 {
		t.Errorf("Topics() = %d after the only subscriber left, want 0", h.Topics())
	}
}

func TestUnsubscribe(t *testing.T) {
	// Each step subscribes (add) or unsubscribes subscriber sub, checking
	// Unsubscribe's result against wantR; after every step the test
	// publishes and checks that exactly the subscribed set received it.
	type step struct {
		sub   int
		add   bool
		wantR bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "never_subscribed", steps: []step{{sub: 0, wantR: false}}},
		{name: "subscribe_unsubscribe_twice", steps: []step{{sub: 0, add: true}, {sub: 0, wantR: true}, {sub: 0, wantR: false}}},
		{name: "other_subscriber_only", steps: []step{{sub: 0, add: true}, {sub: 1, wantR: false}}},
		{name: "remove_first_of_three", steps: []step{{sub: 0, add: true}, {sub: 1, add: true}, {sub: 2, add: true}, {sub: 0, wantR: true}, {sub: 2, wantR: true}, {sub: 1, wantR: true}}},
		{name: "remove_middle_then_moved", steps: []step{{sub: 0, add: true}, {sub: 1, add: true}, {sub: 2, add: true}, {sub: 3, add: true}, {sub: 1, wantR: true}, {sub: 3, wantR: true}, {sub: 1, wantR: false}, {sub: 0, wantR: true}, {sub: 2, wantR: true}}},
		{name: "remove_last", steps: []step{{sub: 0, add: true}, {sub: 1, add: true}, {sub: 1, wantR: true}, {sub: 0, wantR: true}}},
		{name: "empty_then_resubscribe", steps: []step{{sub: 0, add: true}, {sub: 0, wantR: true}, {sub: 1, add: true}, {sub: 0, add: true}, {sub: 1, wantR: true}, {sub: 0, wantR: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
			subs := make([]hub.Subscriber, 4)
			recs := make([]*recSub, 4)
			for i := range subs {
				recs[i] = newRecSub(fmt.Sprint(i))
				subs[i] = recs[i]
			}
			var tp *hub.Topic
			model := map[int]bool{}
			for i, st := range tt.steps {
				if st.add {
					got := mustSubscribe(t, h, "t", subs[st.sub])
					if len(model) > 0 && got != tp {
						t.Fatalf("step %d: Subscribe to a live topic returned a different *Topic", i)
					}
					if len(model) == 0 && got == tp {
						t.Fatalf("step %d: Subscribe returned the removed *Topic", i)
					}
					tp = got
					model[st.sub] = true
				} else {
					if tp == nil {
						// Nobody subscribed yet: get a topic through a
						// subscriber that is removed at once (which
						// removes the topic too).
						extra := &noopSub{id: -1}
						tp = mustSubscribe(t, h, "t", extra)
						if !tp.Unsubscribe(extra) {
							t.Fatalf("step %d: could not remove the helper subscriber", i)
						}
					}
					if got := tp.Unsubscribe(subs[st.sub]); got != st.wantR {
						t.Fatalf("step %d: Unsubscribe(%d) = %v, want %v", i, st.sub, got, st.wantR)
					}
					delete(model, st.sub)
				}
				if tp.Len() != len(model) {
					t.Fatalf("step %d: Len() = %d, want %d", i, tp.Len(), len(model))
				}
				before := make([]int, len(recs))
				for j, r := range recs {
					before[j] = len(r.deliveries(t))
				}
				res := mustPublish(t, h, "t", `1`)
				if res.Recipients != len(model) || res.Queued != len(model) {
					t.Fatalf("step %d: result %+v, want %d recipients", i, res, len(model))
				}
				for j, r := range recs {
					d := r.deliveries(t)
					gotNew := len(d) - before[j]
					want := 0
					if model[j] {
						want = 1
					}
					if gotNew != want {
						t.Fatalf("step %d: subscriber %d got %d frames for seq %d, want %d", i, j, gotNew, res.Seq, want)
					}
					if want == 1 && d[len(d)-1].Seq != res.Seq {
						t.Fatalf("step %d: subscriber %d got seq %d, want %d", i, j, d[len(d)-1].Seq, res.Seq)
					}
				}
			}
		})
	}
}

// TestSubscribeUnsubscribeModel runs random subscribe/unsubscribe sequences
// against a set model, publishing after each operation.
func TestSubscribeUnsubscribeModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			h := mustHub(hub.Config{Shards: 1}, protocol.NewDeliveryFrame)
			const n = 12
			recs := make([]*recSub, n)
			for i := range recs {
				recs[i] = newRecSub(fmt.Sprint(i))
			}
			// The anchor stays subscribed so that the topic lives throughout.
			tp := mustSubscribe(t, h, "m", &noopSub{})
			model := make([]bool, n)
			want := make([][]uint64, n)
			for op := 0; op < 400; op++ {
				i := rng.IntN(n)
				if rng.IntN(2) == 0 {
					mustSubscribe(t, h, "m", recs[i])
					model[i] = true
				} else {
					if got := tp.Unsubscribe(recs[i]); got != model[i] {
						t.Fatalf("op %d: Unsubscribe(%d) = %v, model says subscribed=%v", op, i, got, model[i])
					}
					model[i] = false
				}
				r := mustPublish(t, h, "m", `1`)
				cnt := 0
				for j := range model {
					if model[j] {
						cnt++
						want[j] = append(want[j], r.Seq)
					}
				}
				if r.Recipients != cnt+1 || tp.Len() != cnt+1 {
					t.Fatalf("op %d: recipients %d, Len %d, model %d", op, r.Recipients, tp.Len(), cnt)
				}
			}
			for j, r := range recs {
				if got := r.seqs(t); !slices.Equal(got, want[j]) {
					t.Errorf("subscriber %d: got seqs %v, want %v", j, got, want[j])
				}
			}
		})
	}
}

func TestFramesSharedAndReleased(t *testing.T) {
	tests := []struct {
		name   string
		hold   []bool // per subscriber: keep the frame until released by the test
		accept []bool
	}{
		{name: "one_releases_at_once", hold: []bool{false}, accept: []bool{true}},
		{name: "all_release_at_once", hold: []bool{false, false, false}, accept: []bool{true, true, true}},
		{name: "all_hold", hold: []bool{true, true, true}, accept: []bool{true, true, true}},
		{name: "mixed_hold_and_drop", hold: []bool{true, false, true, true}, accept: []bool{true, true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := &countingEncoder{}
			h := mustHub(hub.Config{}, enc.encode)
			var subs []*recSub
			holders := 0
			for i := range tt.hold {
				s := newRecSub(fmt.Sprint(i))
				s.hold, s.accept = tt.hold[i], tt.accept[i]
				if s.hold && s.accept {
					holders++
				}
				subs = append(subs, s)
				mustSubscribe(t, h, "t", s)
			}
			data := `{"b":1,"a":1.50}`
			want := protocol.NewDeliveryFrame("t", 1, []byte(data))
			wantB := string(want.B)
			want.Release()

			mustPublish(t, h, "t", data)
			if enc.count() != 1 {
				t.Fatalf("encoder called %d times for one publish, want 1", enc.count())
			}
			f := enc.last()
			for _, s := range subs {
				d := s.deliveries(t)
				if len(d) != 1 {
					t.Fatalf("subscriber %s got %d frames, want 1", s.name, len(d))
				}
				if d[0].frame != f {
					t.Errorf("subscriber %s got frame %p, want the shared %p", s.name, d[0].frame, f)
				}
			}
			if holders == 0 {
				if f.B != nil {
					t.Fatalf("frame not returned to the pool after every reference was released (B=%q)", f.B)
				}
				return
			}
			if string(f.B) != wantB {
				t.Fatalf("held frame = %q, want %q", f.B, wantB)
			}
			// Release the holders one by one: the frame must survive until
			// the last one.
			left := holders
			for _, s := range subs {
				if !(s.hold && s.accept) {
					continue
				}
				s.releaseAll()
				left--
				if left > 0 && string(f.B) != wantB {
					t.Fatalf("frame recycled with %d holders left", left)
				}
			}
			if f.B != nil {
				t.Fatalf("frame not returned to the pool after the last holder released it (B=%q)", f.B)
			}
		})
	}
}

// mustHub is hub.New for tests: the memory engine cannot fail.
func mustHub(cfg hub.Config, enc hub.Encoder) *hub.Hub {
	h, err := hub.New(cfg, enc)
	if err != nil {
		panic(err)
	}
	return h
}

// fanoutSub records whether each Send ran inside a fan-out bracket.
type fanoutSub struct {
	open   *int
	inside []bool
}

func (s *fanoutSub) Send(f *bpool.Frame) bool {
	s.inside = append(s.inside, *s.open > 0)
	f.Release()
	return true
}

// TestFanoutHooks: every publication's sends happen between BeginFanout
// and EndFanout, each called once per publication.
func TestFanoutHooks(t *testing.T) {
	var open, begins, ends int
	h := mustHub(hub.Config{
		BeginFanout: func() { open++; begins++ },
		EndFanout:   func() { open--; ends++ },
	}, protocol.NewDeliveryFrame)
	subs := []*fanoutSub{{open: &open}, {open: &open}}
	for _, s := range subs {
		mustSubscribe(t, h, "f", s)
	}
	for i := 0; i < 3; i++ {
		mustPublish(t, h, "f", `1`)
	}
	if begins != 3 || ends != 3 || open != 0 {
		t.Fatalf("begins %d, ends %d, open %d; want 3, 3, 0", begins, ends, open)
	}
	for i, s := range subs {
		if len(s.inside) != 3 || !s.inside[0] || !s.inside[1] || !s.inside[2] {
			t.Fatalf("subscriber %d: sends inside a fan-out %v, want 3 of 3", i, s.inside)
		}
	}
}
