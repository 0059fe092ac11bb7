package suite

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wspush/wspush/bench/internal/report"
)

func TestExtractServerLatency(t *testing.T) {
	measured := func(status string) *report.ServerLatency {
		return &report.ServerLatency{Exported: true, Samples: 20, Deliveries: 380000,
			DeliveryP50Ms: 3, DeliveryP99Ms: 9, FanoutP50Ms: 7, FanoutP99Ms: 12,
			Agreement: report.Agreement{Status: status, UnseenMs: 1.25}}
	}
	all := []string{"server_delivery_p50_ms", "server_delivery_p99_ms", "server_fanout_p50_ms", "server_latency_samples",
		"clients_minus_server_p50_ms", "latency_agrees"}
	for _, tc := range []struct {
		name string
		sl   *report.ServerLatency
		want map[string]float64 // the keys of all that must be present
	}{
		{"agrees", measured(report.AgreePass), map[string]float64{"server_delivery_p50_ms": 3, "server_delivery_p99_ms": 9,
			"server_fanout_p50_ms": 7, "server_latency_samples": 20, "clients_minus_server_p50_ms": 1.25, "latency_agrees": 1}},
		{"disagrees", measured(report.AgreeFail), map[string]float64{"server_delivery_p50_ms": 3, "server_delivery_p99_ms": 9,
			"server_fanout_p50_ms": 7, "server_latency_samples": 20, "clients_minus_server_p50_ms": 1.25, "latency_agrees": 0}},
		{"server figures, agreement n/a (no client latency)", measured(report.AgreeNA), map[string]float64{"server_delivery_p50_ms": 3,
			"server_delivery_p99_ms": 9, "server_fanout_p50_ms": 7, "server_latency_samples": 20}},
		{"a peer", &report.ServerLatency{Agreement: report.Agreement{Status: report.AgreeNA}}, nil},
		{"nothing sampled", &report.ServerLatency{Exported: true, Agreement: report.Agreement{Status: report.AgreeNA}}, nil},
		{"an older report", nil, nil},
	} {
		for _, id := range []string{ScBcastSmall, ScBcastLarge} {
			m := Extract(id, &report.Report{ServerLatency: tc.sl})
			for _, k := range all {
				got, ok := m[k]
				want, wantOK := tc.want[k]
				if ok != wantOK || got != want {
					t.Errorf("%s %s: %s = %v %v, want %v %v", tc.name, id, k, got, ok, want, wantOK)
				}
			}
		}
	}
	if m := Extract(ScThroughput, &report.Report{ServerLatency: measured(report.AgreePass)}); len(m) != 0 {
		t.Errorf("throughput took broadcast figures: %v", m)
	}
}

func TestLatencyAgreesTarget(t *testing.T) {
	for _, tc := range []struct {
		name         string
		small, large []float64 // latency_agrees per round (nil: not measured)
		want         string
		value        float64
	}{
		{"both agree every round", []float64{1, 1, 1}, []float64{1, 1, 1}, "met", 1},
		{"one round of three fails: the median agrees", []float64{1, 0, 1}, []float64{1, 1, 1}, "met", 1},
		{"small fails", []float64{0, 0, 1}, []float64{1, 1, 1}, "NOT met", 0},
		{"large fails", []float64{1, 1, 1}, []float64{0, 1, 0}, "NOT met", 0},
		{"two rounds split", []float64{1, 0}, []float64{1, 1}, "NOT met", 0.5},
		{"only the large broadcast ran", nil, []float64{1}, "met", 1},
		{"only the small broadcast ran", []float64{0}, nil, "NOT met", 0},
		{"no figures (a peer as ref, or no histograms)", nil, nil, "n/a", -1},
	} {
		runs := runsOf("wspush", ScBcastSmall, "latency_agrees", tc.small...)
		runs = append(runs, runsOf("wspush", ScBcastLarge, "latency_agrees", tc.large...)...)
		runs = append(runs, runsOf("floor", ScBcastLarge, "latency_p99_ms", 5)...)
		var got TargetResult
		for _, r := range Judge(Aggregate(runs), "wspush", Targets) {
			if r.ID == "latency-agrees" {
				got = r
			}
		}
		if got.ID == "" {
			t.Fatal("no latency-agrees target")
		}
		if got.Status != tc.want || (tc.value >= 0 && float64(got.Value) != tc.value) || (tc.value < 0 && got.Value.OK()) {
			t.Errorf("%s: %s value %v (%s), want %s %v", tc.name, got.Status, got.Value, got.Detail, tc.want, tc.value)
		}
	}
}

func TestRenderLatencyRows(t *testing.T) {
	res := &Results{Rounds: 1, Ref: "wspush", Scenarios: Plan(QuickSizes)[2:4],
		Servers: []ServerSpec{{Name: "wspush", Kind: KindWspushd}, {Name: "floor", Kind: KindPeer}}}
	res.Runs = []RunRecord{
		{Round: 1, Server: "wspush", Scenario: ScBcastLarge, Metrics: map[string]float64{"latency_p50_ms": 5,
			"server_delivery_p50_ms": 3, "server_delivery_p99_ms": 9, "server_fanout_p50_ms": 7, "server_latency_samples": 20,
			"clients_minus_server_p50_ms": 2, "latency_agrees": 1}},
		{Round: 1, Server: "floor", Scenario: ScBcastLarge, Metrics: map[string]float64{"latency_p50_ms": 4}},
	}
	res.summarize()
	var b bytes.Buffer
	if err := WriteTerminal(&b, res); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{"server-measured delivery p50 3.00 ms n/a", "server-measured delivery p99 9.00 ms n/a",
		"server-measured fan-out p50 7.00 ms n/a", "server latency samples (publishes) 20 n/a", "clients minus server p50 2.00 ms n/a",
		"latency agreement yes n/a", "server latency metric agrees with the clients yes yes met"} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
}
