package hub_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
)

// Topic lifetime: a topic exists while it has subscribers; each run of a
// topic has its own epoch.

// epochRE is the documented epoch alphabet and length.
var epochRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func checkEpoch(t testing.TB, e string) {
	t.Helper()
	if !epochRE.MatchString(e) {
		t.Fatalf("epoch %q is not 1-32 characters of [A-Za-z0-9_-]", e)
	}
}

func TestTopicRemovedWithLastSubscriber(t *testing.T) {
	tests := []struct {
		name  string
		subs  int
		order []int // unsubscribe order (indices into subs)
	}{
		{name: "one", subs: 1, order: []int{0}},
		{name: "three_in_order", subs: 3, order: []int{0, 1, 2}},
		{name: "three_last_first", subs: 3, order: []int{2, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
			subs := make([]*noopSub, tt.subs)
			var tp *hub.Topic
			for i := range subs {
				subs[i] = &noopSub{id: i}
				tp = mustSubscribe(t, h, "t", subs[i])
			}
			for n, i := range tt.order {
				if h.Topics() != 1 {
					t.Fatalf("before unsubscribe %d: Topics() = %d, want 1", n, h.Topics())
				}
				if !tp.Unsubscribe(subs[i]) {
					t.Fatalf("Unsubscribe(%d) = false", i)
				}
			}
			if h.Topics() != 0 {
				t.Fatalf("Topics() = %d after the last subscriber left, want 0", h.Topics())
			}
			if e, seq, ok := h.Position("t"); ok {
				t.Fatalf("Position of a removed topic = %q, %d, true; want not found", e, seq)
			}
			if tp.Unsubscribe(subs[0]) {
				t.Fatal("Unsubscribe on a removed topic = true")
			}
		})
	}
}

func TestRecreatedTopicHasNewEpoch(t *testing.T) {
	h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
	seen := map[string]bool{}
	for run := 0; run < 5; run++ {
		s := newRecSub(fmt.Sprint(run))
		tp := mustSubscribe(t, h, "t", s)
		checkEpoch(t, tp.Epoch())
		if seen[tp.Epoch()] {
			t.Fatalf("run %d: epoch %q was used by an earlier run", run, tp.Epoch())
		}
		seen[tp.Epoch()] = true
		for want := uint64(1); want <= 3; want++ {
			r := mustPublish(t, h, "t", `1`)
			if r.Seq != want || r.Epoch != tp.Epoch() || r.Recipients != 1 {
				t.Fatalf("run %d: result %+v, want seq %d epoch %q and 1 recipient", run, r, want, tp.Epoch())
			}
		}
		if e, seq, ok := h.Position("t"); !ok || e != tp.Epoch() || seq != 3 {
			t.Fatalf("run %d: Position = %q, %d, %v; want %q, 3, true", run, e, seq, ok, tp.Epoch())
		}
		if !tp.Unsubscribe(s) {
			t.Fatalf("run %d: Unsubscribe = false", run)
		}
	}
}

func TestPublishWithoutTopicCreatesNothing(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		existing int // topics with a subscriber before the publishes
	}{
		{name: "no_cap", max: 0, existing: 0},
		{name: "at_cap", max: 2, existing: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := &countingEncoder{}
			h := mustHub(hub.Config{MaxTopics: tt.max}, enc.encode)
			for i := 0; i < tt.existing; i++ {
				mustSubscribe(t, h, fmt.Sprint("sub", i), &noopSub{id: i})
			}
			epochs := map[string]bool{}
			for i := 0; i < 3; i++ {
				r, err := h.Publish("fresh", []byte(`1`))
				if err != nil {
					t.Fatalf("publish %d to a topic nobody subscribes: %v", i, err)
				}
				if r.Seq != 1 || r.Recipients != 0 || r.Queued != 0 {
					t.Fatalf("publish %d: %+v, want seq 1 and no recipients", i, r)
				}
				checkEpoch(t, r.Epoch)
				if epochs[r.Epoch] {
					t.Fatalf("publish %d: epoch %q repeated", i, r.Epoch)
				}
				epochs[r.Epoch] = true
			}
			if h.Topics() != tt.existing {
				t.Fatalf("Topics() = %d, want %d: a publish created a topic", h.Topics(), tt.existing)
			}
			if _, _, ok := h.Position("fresh"); ok {
				t.Fatal("a publish without subscribers left a topic behind")
			}
			if enc.count() != 0 {
				t.Fatalf("encoder called %d times with nothing to deliver", enc.count())
			}
		})
	}
}

// TestMaxTopicsCountReturnsToZero is the reported bug: subscribe/unsubscribe
// cycles of fresh names used up --max-topics for everyone.
func TestMaxTopicsCountReturnsToZero(t *testing.T) {
	const max = 10
	h := mustHub(hub.Config{MaxTopics: max}, protocol.NewDeliveryFrame)
	s := &noopSub{}
	for i := 0; i < 2*max; i++ {
		tp, err := h.Subscribe(fmt.Sprint("cycle", i), s)
		if err != nil {
			t.Fatalf("cycle %d: Subscribe: %v", i, err)
		}
		tp.Unsubscribe(s)
	}
	if h.Topics() != 0 {
		t.Fatalf("Topics() = %d after every subscriber left, want 0", h.Topics())
	}
	// The cap still holds for topics that exist.
	for i := 0; i < max; i++ {
		mustSubscribe(t, h, fmt.Sprint("live", i), s)
	}
	if _, err := h.Subscribe("one-more", s); !errors.Is(err, hub.ErrTooManyTopics) {
		t.Fatalf("Subscribe over the cap: err = %v, want ErrTooManyTopics", err)
	}
	if r, err := h.Publish("one-more", []byte(`1`)); err != nil || r.Recipients != 0 {
		t.Fatalf("Publish to a missing topic at the cap = %+v, %v; want no recipients, no error", r, err)
	}
}

// TestConcurrentTopicChurn subscribes, publishes and unsubscribes on a few
// names from many goroutines: a subscriber must never land on a removed
// topic (it would miss its own publish), and the topic count must return
// to zero.
func TestConcurrentTopicChurn(t *testing.T) {
	tests := []struct {
		name    string
		shards  int
		names   int
		workers int
	}{
		{name: "one_name", shards: 1, names: 1, workers: 16},
		{name: "few_names_one_shard", shards: 1, names: 3, workers: 16},
		{name: "few_names_default_shards", shards: 0, names: 4, workers: 16},
	}
	const rounds = 200
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHub(hub.Config{Shards: tt.shards, MaxTopics: tt.names}, protocol.NewDeliveryFrame)
			var wg sync.WaitGroup
			for w := 0; w < tt.workers; w++ {
				wg.Go(func() {
					for i := 0; i < rounds; i++ {
						name := fmt.Sprint("n", (w+i)%tt.names)
						if err := churnOnce(h, name, fmt.Sprint(w, "/", i)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if h.Topics() != 0 {
				t.Fatalf("Topics() = %d after every subscriber left, want 0", h.Topics())
			}
			for i := 0; i < tt.names; i++ {
				if _, _, ok := h.Position(fmt.Sprint("n", i)); ok {
					t.Errorf("topic n%d still exists", i)
				}
			}
		})
	}
}

// churnOnce subscribes a fresh subscriber to name, publishes a marker and
// checks that the subscriber got it on the live topic, then unsubscribes.
func churnOnce(h *hub.Hub, name, marker string) error {
	s := newRecSub(marker)
	tp, err := h.Subscribe(name, s)
	if err != nil {
		return fmt.Errorf("%s: Subscribe: %w", marker, err)
	}
	data := fmt.Sprintf("%q", marker)
	r, err := h.Publish(name, []byte(data))
	if err != nil {
		return fmt.Errorf("%s: Publish: %w", marker, err)
	}
	if r.Recipients < 1 || r.Epoch != tp.Epoch() {
		return fmt.Errorf("%s: publish %+v reached no live subscriber (topic epoch %q)", marker, r, tp.Epoch())
	}
	s.mu.Lock()
	got := false
	for _, d := range s.got {
		got = got || string(d.Data) == data
	}
	s.mu.Unlock()
	if !got {
		return fmt.Errorf("%s: subscriber missed its own publish (seq %d)", marker, r.Seq)
	}
	if !tp.Unsubscribe(s) {
		return fmt.Errorf("%s: Unsubscribe = false: the subscription was lost", marker)
	}
	return nil
}

func TestSubscribers(t *testing.T) {
	h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
	if got := h.Subscribers("t", nil); len(got) != 0 {
		t.Fatalf("Subscribers of an absent topic = %v", got)
	}
	a, b, c := &noopSub{id: 1}, &noopSub{id: 2}, &noopSub{id: 3}
	tp := mustSubscribe(t, h, "t", a)
	mustSubscribe(t, h, "t", b)
	mustSubscribe(t, h, "other", c)
	// One being recovered (held) counts too.
	held := &noopSub{id: 4}
	if _, _, err := h.SubscribeAt(context.Background(), "t", held, true); err != nil {
		t.Fatal(err)
	}
	got := h.Subscribers("t", []hub.Subscriber{c})
	if len(got) != 4 || got[0] != c || !slices.Contains(got, hub.Subscriber(a)) || !slices.Contains(got, hub.Subscriber(b)) || !slices.Contains(got, hub.Subscriber(held)) {
		t.Fatalf("Subscribers(t) = %v, want [c a b held] in any order after c", got)
	}
	tp.Unsubscribe(a)
	if got := h.Subscribers("t", nil); len(got) != 2 || slices.Contains(got, hub.Subscriber(a)) {
		t.Fatalf("after a left: %v", got)
	}
}
