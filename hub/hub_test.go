package hub_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
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

func TestSeqWithoutSubscribers(t *testing.T) {
	enc := &countingEncoder{}
	h := hub.New(hub.Config{}, enc.encode)
	if got := h.Seq("t"); got != 0 {
		t.Fatalf("Seq of a missing topic = %d, want 0", got)
	}
	if h.Topics() != 0 {
		t.Fatalf("Seq created a topic: Topics() = %d", h.Topics())
	}
	for want := uint64(1); want <= 5; want++ {
		r := mustPublish(t, h, "t", `1`)
		if r.Seq != want || r.Recipients != 0 || r.Queued != 0 {
			t.Fatalf("publish %d: result %+v, want seq %d and no recipients", want, r, want)
		}
		if got := h.Seq("t"); got != want {
			t.Fatalf("Seq = %d, want %d", got, want)
		}
	}
	if n := enc.count(); n != 0 {
		t.Errorf("encoder called %d times with no subscribers, want 0", n)
	}
	// Another topic has its own sequence.
	if r := mustPublish(t, h, "u", `1`); r.Seq != 1 {
		t.Errorf("first seq of a second topic = %d, want 1", r.Seq)
	}
	if h.Topics() != 2 {
		t.Errorf("Topics() = %d, want 2", h.Topics())
	}
}

func TestPublishDelivers(t *testing.T) {
	h := hub.New(hub.Config{}, protocol.NewDeliveryFrame)
	a, b := newRecSub("a"), newRecSub("b")
	mustSubscribe(t, h, "news", a)
	mustPublish(t, h, "other", `0`) // no cross-talk between topics
	mustSubscribe(t, h, "news", b)
	mustSubscribe(t, h, "other", b)

	r1 := mustPublish(t, h, "news", `{"b":1,"a":1.50}`)
	r2 := mustPublish(t, h, "other", `"x"`)
	r3 := mustPublish(t, h, "news", `[2]`)
	if r1.Seq != 1 || r2.Seq != 2 || r3.Seq != 2 {
		t.Fatalf("seqs = %d, %d, %d, want 1, 2, 2", r1.Seq, r2.Seq, r3.Seq)
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
			{Topic: "other", Seq: 2, Data: json.RawMessage(`"x"`)},
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
			h := hub.New(hub.Config{}, protocol.NewDeliveryFrame)
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
				want := hub.Result{Seq: uint64(round), Recipients: len(tt.accept), Queued: wantQueued}
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
	h := hub.New(hub.Config{}, protocol.NewDeliveryFrame)
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
	if h.Topics() != 1 {
		t.Errorf("Topics() = %d, want 1", h.Topics())
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
			h := hub.New(hub.Config{}, protocol.NewDeliveryFrame)
			subs := make([]hub.Subscriber, 4)
			recs := make([]*recSub, 4)
			for i := range subs {
				recs[i] = newRecSub(fmt.Sprint(i))
				subs[i] = recs[i]
			}
			// Publishing once creates the topic; Subscribe returns it.
			mustPublish(t, h, "t", `0`)
			var tp *hub.Topic
			model := map[int]bool{}
			for i, st := range tt.steps {
				if st.add {
					got := mustSubscribe(t, h, "t", subs[st.sub])
					if tp != nil && got != tp {
						t.Fatalf("step %d: Subscribe returned a different *Topic", i)
					}
					tp = got
					model[st.sub] = true
				} else {
					if tp == nil {
						// Nobody subscribed yet: get the topic through a
						// subscriber that is removed at once.
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
			h := hub.New(hub.Config{Shards: 1}, protocol.NewDeliveryFrame)
			const n = 12
			recs := make([]*recSub, n)
			for i := range recs {
				recs[i] = newRecSub(fmt.Sprint(i))
			}
			anchor := &noopSub{}
			tp := mustSubscribe(t, h, "m", anchor)
			tp.Unsubscribe(anchor)
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
				if r.Recipients != cnt || tp.Len() != cnt {
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
			h := hub.New(hub.Config{}, enc.encode)
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

// TestConcurrentPublishOrdering publishes to one topic from many goroutines
// while subscribers join and leave: every subscriber must see strictly
// increasing seqs with no gap while it is subscribed. Publishing runs in
// phases; between phases one subscriber joins and one leaves, so their first
// and last seqs are known exactly. A churning goroutine also subscribes and
// unsubscribes short-lived subscribers while publishes are in flight.
func TestConcurrentPublishOrdering(t *testing.T) {
	const (
		publishers = 16
		phases     = 5
		perPhase   = 40 // per publisher per phase
		perAll     = publishers * perPhase
		total      = phases * perAll
	)
	h := hub.New(hub.Config{}, protocol.NewDeliveryFrame)
	steady := make([]*recSub, 4)
	leavers := make([]*recSub, phases-1)
	joiners := make([]*recSub, phases-1)
	var tp *hub.Topic
	for i := range steady {
		steady[i] = newRecSub(fmt.Sprint("steady", i))
		tp = mustSubscribe(t, h, "t", steady[i])
	}
	for i := range leavers {
		leavers[i] = newRecSub(fmt.Sprint("leaver", i))
		mustSubscribe(t, h, "t", leavers[i])
		joiners[i] = newRecSub(fmt.Sprint("joiner", i))
	}

	// Churn: short subscriptions racing with the publishers.
	done := make(chan struct{})
	var sessions []*recSub
	var churn sync.WaitGroup
	churn.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			default:
			}
			s := newRecSub(fmt.Sprint("churn", n))
			sessions = append(sessions, s)
			if _, err := h.Subscribe("t", s); err != nil {
				t.Error(err)
				return
			}
			for range 3 {
				runtime.Gosched()
			}
			if !tp.Unsubscribe(s) {
				t.Errorf("churn subscriber %d was not subscribed", n)
			}
		}
	})

	seqs := make(chan uint64, total)
	for phase := 0; phase < phases; phase++ {
		var wg sync.WaitGroup
		for p := 0; p < publishers; p++ {
			wg.Go(func() {
				for i := 0; i < perPhase; i++ {
					r, err := h.Publish("t", []byte(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)))
					if err != nil {
						t.Error(err)
						return
					}
					seqs <- r.Seq
				}
			})
		}
		wg.Wait()
		if phase < phases-1 {
			mustSubscribe(t, h, "t", joiners[phase])
			if !tp.Unsubscribe(leavers[phase]) {
				t.Fatalf("leaver %d was not subscribed", phase)
			}
		}
	}
	close(done)
	churn.Wait()
	close(seqs)

	var all []uint64
	for s := range seqs {
		all = append(all, s)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("publish results: seq %d at position %d; seqs are not exactly 1..%d", s, i, total)
		}
	}
	if len(all) != total || h.Seq("t") != total {
		t.Fatalf("%d results, Seq() = %d, want %d", len(all), h.Seq("t"), total)
	}

	// contiguous checks that s saw exactly first..last (first 0: any
	// contiguous run, possibly empty).
	contiguous := func(s *recSub, first, last uint64) {
		got := s.seqs(t)
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Errorf("%s: seq %d followed by %d (gap or reorder)", s.name, got[i-1], got[i])
				return
			}
		}
		if first == 0 {
			return
		}
		if len(got) == 0 || got[0] != first || got[len(got)-1] != last {
			t.Errorf("%s: got %d frames %v..., want seqs %d..%d", s.name, len(got), got[:min(len(got), 3)], first, last)
		}
	}
	for i := range steady {
		contiguous(steady[i], 1, total)
	}
	for i := range leavers {
		contiguous(leavers[i], 1, uint64((i+1)*perAll))
		contiguous(joiners[i], uint64((i+1)*perAll+1), total)
	}
	for _, s := range sessions {
		contiguous(s, 0, 0)
	}
	if len(sessions) == 0 {
		t.Error("the churn goroutine never ran")
	}
}

func TestConcurrentTopicCreation(t *testing.T) {
	tests := []struct {
		name   string
		shards int
		topics int
		subs   int
	}{
		{name: "one_topic_one_shard", shards: 1, topics: 1, subs: 32},
		{name: "many_topics_default_shards", shards: 0, topics: 50, subs: 8},
		{name: "many_topics_few_shards", shards: 3, topics: 50, subs: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hub.New(hub.Config{Shards: tt.shards}, protocol.NewDeliveryFrame)
			var wg sync.WaitGroup
			topics := make([]sync.Map, tt.topics) // *hub.Topic seen per topic
			for i := 0; i < tt.topics; i++ {
				for j := 0; j < tt.subs; j++ {
					wg.Go(func() {
						tp, err := h.Subscribe(fmt.Sprint("topic", i), &noopSub{id: j})
						if err != nil {
							t.Error(err)
							return
						}
						topics[i].Store(tp, true)
						if _, err := h.Publish(fmt.Sprint("topic", i), []byte(`1`)); err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
			if got := h.Topics(); got != tt.topics {
				t.Fatalf("Topics() = %d, want %d", got, tt.topics)
			}
			for i := range topics {
				n := 0
				topics[i].Range(func(k, _ any) bool {
					n++
					if l := k.(*hub.Topic).Len(); l != tt.subs {
						t.Errorf("topic%d has %d subscribers, want %d", i, l, tt.subs)
					}
					return true
				})
				if n != 1 {
					t.Errorf("topic%d: Subscribe returned %d distinct *Topic values, want 1", i, n)
				}
				if s := h.Seq(fmt.Sprint("topic", i)); s != uint64(tt.subs) {
					t.Errorf("topic%d: Seq() = %d, want %d", i, s, tt.subs)
				}
			}
		})
	}
}
