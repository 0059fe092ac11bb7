//go:build !race

// The allocation tests of this package. sync.Pool drops a random share of
// Puts under the race detector, so a pooled path's allocation count means
// nothing there: these tests are built only without -race, where make
// test-allocs runs them (in CI too), rather than skipping under it.

package hub_test

import (
	"testing"
	"time"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/protocol"
)

func TestPublishAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rec    *latency.Recorder
		policy slowpolicy.Policy
	}{
		{"unsampled", nil, slowpolicy.Default},
		// Every publish sampled: its probe comes from the recorder's pool
		// and goes back with the frame's last release.
		{"every publish sampled", latency.NewRecorder(time.Nanosecond), slowpolicy.Default},
		// A conflated topic: marking its frames costs nothing.
		{"conflated", nil, slowpolicy.Conflate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy := func(string) slowpolicy.Policy { return tc.policy }
			h := mustHub(hub.Config{Latency: tc.rec, Policy: policy}, protocol.NewDeliveryFrame)
			for i := 0; i < 100; i++ {
				mustSubscribe(t, h, "quotes.ABC", &noopSub{id: i})
			}
			data := []byte(`{"price":101.25,"sym":"ABC"}`)
			for i := 0; i < 10; i++ { // warm up the pools
				mustPublish(t, h, "quotes.ABC", string(data))
			}
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				_, err = h.Publish("quotes.ABC", data)
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Fatalf("Publish to 100 subscribers allocates %.2f times per call, want 0", allocs)
			}
		})
	}
}
