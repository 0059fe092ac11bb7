package hub_test

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
)

// Publishes, subscribes and topic creation racing each other.

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
	h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
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
	if _, seq, _ := h.Position("t"); len(all) != total || seq != total {
		t.Fatalf("%d results, Position seq = %d, want %d", len(all), seq, total)
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
			h := mustHub(hub.Config{Shards: tt.shards}, protocol.NewDeliveryFrame)
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
				if _, s, _ := h.Position(fmt.Sprint("topic", i)); s != uint64(tt.subs) {
					t.Errorf("topic%d: Position seq = %d, want %d", i, s, tt.subs)
				}
			}
		})
	}
}
