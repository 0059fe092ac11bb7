package server

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the server's /metrics into families by name.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	body := get(t, "http://"+s.APIAddr().String()+"/metrics", 200)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// TestDeliveryLatencyMetrics: with one sample an hour, only the first of
// several publishes is timed; each of its 3 recipients' socket writes is
// one observation of wspush_delivery_latency_seconds, its fan-out one of
// wspush_fanout_seconds, and the fan-out is the slowest delivery. Off, the
// histograms are not exported.
func TestDeliveryLatencyMetrics(t *testing.T) {
	tests := []struct {
		name                  string
		sample                time.Duration
		wantDeliv, wantFanout uint64
	}{
		{"first publish sampled", time.Hour, 3, 1},
		{"sampling off", -1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Config{LatencySample: tc.sample})
			for i := 0; i < 3; i++ {
				dial(t, s, "/ws?topics=lat")
			}
			for i := 0; i < 4; i++ {
				if r := publish(t, s, "lat", `{"i":1}`); r.Recipients != 3 {
					t.Fatalf("publish reached %d subscribers, want 3", r.Recipients)
				}
			}
			// The metric counts writes: wait until every frame was written.
			deadline := time.Now().Add(readWait)
			for s.ws.Stats().Delivered.Load() < 12 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			fams := scrape(t, s)
			deliv, fan := fams["wspush_delivery_latency_seconds"], fams["wspush_fanout_seconds"]
			if tc.wantDeliv == 0 {
				if deliv != nil || fan != nil {
					t.Fatal("latency histograms exported with sampling off")
				}
				return
			}
			if deliv == nil || fan == nil {
				t.Fatal("latency histograms missing from /metrics")
			}
			dh, fh := deliv.Metric[0].GetHistogram(), fan.Metric[0].GetHistogram()
			if dh.GetSampleCount() != tc.wantDeliv || fh.GetSampleCount() != tc.wantFanout {
				t.Fatalf("observations: delivery %d, fan-out %d; want %d and %d",
					dh.GetSampleCount(), fh.GetSampleCount(), tc.wantDeliv, tc.wantFanout)
			}
			// The fan-out lasts until the last delivery: at least the mean
			// delivery, at most their sum.
			mean := dh.GetSampleSum() / float64(dh.GetSampleCount())
			if f := fh.GetSampleSum(); f < mean || f > dh.GetSampleSum() || f <= 0 {
				t.Fatalf("fan-out %v s against deliveries summing %v s (mean %v)", f, dh.GetSampleSum(), mean)
			}
		})
	}
}
