package hub_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
)

// Topic limits, allocation checks and benchmarks.

func TestMaxTopics(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		create    int // topics created before the checks
		wantLimit bool
	}{
		{name: "unlimited", max: 0, create: 100, wantLimit: false},
		{name: "max_1", max: 1, create: 1, wantLimit: true},
		{name: "max_3", max: 3, create: 3, wantLimit: true},
		{name: "under_max", max: 6, create: 4, wantLimit: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHub(hub.Config{MaxTopics: tt.max}, protocol.NewDeliveryFrame)
			for i := 0; i < tt.create; i++ {
				mustSubscribe(t, h, fmt.Sprint("t", i), &noopSub{id: i})
			}
			if h.Topics() != tt.create {
				t.Fatalf("Topics() = %d, want %d", h.Topics(), tt.create)
			}
			// A publish never creates a topic, so the cap never refuses it.
			if r, err := h.Publish("new", []byte(`1`)); err != nil || r.Recipients != 0 {
				t.Fatalf("Publish to a missing topic = %+v, %v; want no recipients, no error", r, err)
			}
			_, serr := h.Subscribe("new2", &noopSub{})
			if tt.wantLimit {
				if !errors.Is(serr, hub.ErrTooManyTopics) {
					t.Fatalf("Subscribe err = %v, want ErrTooManyTopics", serr)
				}
				if h.Topics() != tt.create {
					t.Errorf("Topics() = %d after a refused creation, want %d", h.Topics(), tt.create)
				}
				if _, _, ok := h.Position("new2"); ok {
					t.Errorf("refused topic exists")
				}
			} else if serr != nil {
				t.Fatalf("Subscribe err = %v, want nil", serr)
			}
			// Existing topics keep working at the cap.
			s := newRecSub("s")
			mustSubscribe(t, h, "t0", s)
			if r := mustPublish(t, h, "t0", `2`); r.Recipients != 2 {
				t.Errorf("publish to an existing topic at the cap: %+v", r)
			}
			if got := s.seqs(t); len(got) != 1 {
				t.Errorf("subscriber to an existing topic got %v", got)
			}
		})
	}
}

// TestMaxTopicsConcurrent creates distinct topics from many goroutines at
// once. The cap is checked against a hub-wide counter under a per-shard
// lock, so creations in different shards can both pass the check.
func TestMaxTopicsConcurrent(t *testing.T) {
	for round := 0; round < 200; round++ {
		const max = 4
		h := mustHub(hub.Config{MaxTopics: max}, protocol.NewDeliveryFrame)
		var wg sync.WaitGroup
		var ok atomic.Int64
		start := make(chan struct{})
		for i := 0; i < 64; i++ {
			wg.Go(func() {
				<-start
				if _, err := h.Subscribe(fmt.Sprint("topic", i), &noopSub{id: i}); err == nil {
					ok.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if h.Topics() > max || ok.Load() > max {
			t.Fatalf("round %d: MaxTopics=%d but Topics()=%d and %d creating subscribes succeeded", round, max, h.Topics(), ok.Load())
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := mustHub(hub.Config{}, protocol.NewDeliveryFrame)
			for i := 0; i < n; i++ {
				if _, err := h.Subscribe("quotes.ABC", &noopSub{id: i}); err != nil {
					b.Fatal(err)
				}
			}
			data := []byte(`{"price":101.25,"sym":"ABC","ts":1700000000123}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Publish("quotes.ABC", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
