package scenario

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/server"
)

// TestBroadcastServerLatency runs a paced broadcast against a wspushd
// sampling every 10 ms (as the suite starts it): every publish, 50 ms
// apart, is sampled, and the report carries the server's own figures and
// the agreement judged against the clients'.
func TestBroadcastServerLatency(t *testing.T) {
	s := startServerWith(t, server.Config{LatencySample: 10 * time.Millisecond})
	cfg := BroadcastConfig{Common: common(t, s, 100, 1), Messages: 20, Size: 128, Rate: 20, Publishers: 1}
	cfg.JSON = t.TempDir() + "/r.json"
	rep, err := Broadcast(context.Background(), cfg)
	assertExact(t, cfg, err, rep.Checks)
	sl := rep.ServerLatency
	if sl == nil || !sl.Exported {
		t.Fatalf("no server latency: %+v", sl)
	}
	// Every publish should be sampled; a few may share an interval with the
	// previous one on a slow machine.
	if sl.Samples < 10 || sl.Samples > 20 || sl.Deliveries != 100*sl.Samples {
		t.Errorf("%d sampled publishes, %d deliveries timed; want 10..20 and 100 each", sl.Samples, sl.Deliveries)
	}
	if sl.DeliveryP50Ms <= 0 || sl.DeliveryP99Ms < sl.DeliveryP50Ms || sl.FanoutP50Ms <= 0 || sl.FanoutP99Ms < sl.FanoutP50Ms {
		t.Errorf("figures %+v", sl)
	}
	a := sl.Agreement
	if a.Status != report.AgreePass && a.Status != report.AgreeFail {
		t.Fatalf("agreement not judged: %+v", a)
	}
	if a.ClientP50Ms != rep.Latency.P50 || a.ServerP50Ms != sl.DeliveryP50Ms || a.BoundMs <= 0 || a.BoundWhy == "" {
		t.Errorf("agreement %+v", a)
	}
	t.Logf("server p50 %.3f ms (fan-out %.3f ms), clients p50 %.3f ms (last subscriber %.3f ms): %s: %s",
		sl.DeliveryP50Ms, sl.FanoutP50Ms, a.ClientP50Ms, a.LastSubMedianMs, a.Status, a.Verdict)
	b, err := os.ReadFile(cfg.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(b, &back); err != nil || back.ServerLatency == nil || back.ServerLatency.Samples != sl.Samples {
		t.Errorf("JSON round trip: %v %+v", err, back.ServerLatency)
	}
}

// TestBroadcastNoLatencyHistograms: a server without the histograms (here
// wspushd with the sampling off, which exports none, like the peers) gets
// n/a, and its delivery checks are unaffected.
func TestBroadcastNoLatencyHistograms(t *testing.T) {
	s := startServerWith(t, server.Config{LatencySample: -1})
	cfg := BroadcastConfig{Common: common(t, s, 20, 1), Messages: 5, Size: 64, Publishers: 1}
	rep, err := Broadcast(context.Background(), cfg)
	assertExact(t, cfg, err, rep.Checks)
	if sl := rep.ServerLatency; sl == nil || sl.Exported || sl.Agreement.Status != report.AgreeNA {
		t.Errorf("server latency %+v", sl)
	}
}
