package hub_test

import (
	"testing"
	"time"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/protocol"
)

// probeSub marks each probed frame written, like a writer would, and
// remembers which deliveries carried a probe.
type probeSub struct{ probed []bool }

func (s *probeSub) Send(f *bpool.Frame) bool {
	s.probed = append(s.probed, f.Probe != nil)
	if f.Probe != nil {
		f.Probe.Written(latency.Now())
	}
	f.Release()
	return true
}

// TestLatencySampling: with one sample per hour only the first publish is
// sampled; each of its recipients' writes lands in the delivery histogram,
// and the end of its fan-out once in the fan-out histogram.
func TestLatencySampling(t *testing.T) {
	rec := latency.NewRecorder(time.Hour)
	h := mustHub(hub.Config{Latency: rec}, protocol.NewDeliveryFrame)
	subs := []*probeSub{{}, {}, {}}
	for _, s := range subs {
		mustSubscribe(t, h, "t", s)
	}
	for i := 0; i < 5; i++ {
		mustPublish(t, h, "t", `{"n":1}`)
	}
	for i, s := range subs {
		want := []bool{true, false, false, false, false}
		if len(s.probed) != len(want) || !s.probed[0] || s.probed[1] || s.probed[4] {
			t.Errorf("subscriber %d: probed %v, want %v", i, s.probed, want)
		}
	}
	if got := rec.Delivery.Snapshot().Count; got != 3 {
		t.Errorf("delivery observations = %d, want 3 (one sampled publish, 3 recipients)", got)
	}
	if got := rec.Fanout.Snapshot().Count; got != 1 {
		t.Errorf("fan-out observations = %d, want 1", got)
	}
}
