package suite

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{-1, 7}, 3},
		{[]float64{2, 2, 9}, 2},
	} {
		in := slices.Clone(tc.in)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("Median reordered its input: %v", in)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		r      Num
		better int
		want   string
	}{
		{2, Higher, "better"}, {0.5, Higher, "worse"}, {0.5, Lower, "better"}, {2, Lower, "worse"},
		{1.01, Higher, "even"}, {0.99, Lower, "even"}, {NaN(), Lower, "n/a"}, {Num(math.Inf(1)), Higher, "n/a"}, {2, Neither, "n/a"},
	} {
		if got := Verdict(tc.r, tc.better); got != tc.want {
			t.Errorf("Verdict(%v, %d) = %q, want %q", tc.r, tc.better, got, tc.want)
		}
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal([]Num{1.5, NaN(), Num(math.Inf(-1))})
	if err != nil || string(b) != "[1.5,null,null]" {
		t.Fatalf("%s %v", b, err)
	}
	var back []Num
	if err := json.Unmarshal(b, &back); err != nil || back[0] != 1.5 || back[1].OK() || back[2].OK() {
		t.Errorf("%v %v", back, err)
	}
}

// runsOf makes one RunRecord per value: round i+1 of server on metric id.
func runsOf(server, scenario, key string, vals ...float64) []RunRecord {
	var out []RunRecord
	for i, v := range vals {
		out = append(out, RunRecord{Round: i + 1, Server: server, Scenario: scenario, Metrics: map[string]float64{key: v}})
	}
	return out
}

func TestAggregateRatiosJudge(t *testing.T) {
	var runs []RunRecord
	runs = append(runs, runsOf("wspush", ScThroughput, "deliveries_per_s", 300, 100, 200)...)
	runs = append(runs, runsOf("floor", ScThroughput, "deliveries_per_s", 240, 260, 250)...)
	runs = append(runs, runsOf("gorilla", ScThroughput, "deliveries_per_s", 80, 70)...)
	runs = append(runs, runsOf("wspush", ScConnect, "rss_per_conn_bytes", 800, 900, 1100)...)
	runs = append(runs, runsOf("gorilla", ScConnect, "rss_per_conn_bytes", 4000, 3000, 3500)...)
	runs = append(runs, runsOf("wspush", ScChurn, "fds_delta", 0, 3, 0)...)
	runs = append(runs, runsOf("wspush", ScChurn, "goroutines_delta", 0, 1, -5)...)
	runs = append(runs, RunRecord{Server: "floor", Scenario: ScThroughput, Metrics: map[string]float64{"latency_p99_ms": math.NaN()}})
	tab := Aggregate(runs)

	s, ok := tab.Get("wspush", ScThroughput+".deliveries_per_s")
	if !ok || s.Median != 200 || s.Min != 100 || s.Max != 300 || !slices.Equal(s.Values, []float64{300, 100, 200}) {
		t.Errorf("wspush throughput %+v", s)
	}
	if s, _ := tab.Get("gorilla", ScThroughput+".deliveries_per_s"); s.Median != 75 {
		t.Errorf("gorilla median %v, want 75", s.Median)
	}
	if _, ok := tab.Get("floor", ScThroughput+".latency_p99_ms"); ok {
		t.Error("a NaN value was aggregated")
	}

	ratios := Ratios(tab, "wspush", []string{"gorilla", "floor"})
	find := func(metric, other string) Ratio {
		for _, r := range ratios {
			if r.Metric == metric && r.Other == other {
				return r
			}
		}
		t.Fatalf("no ratio %s/%s", metric, other)
		return Ratio{}
	}
	if r := find(ScThroughput+".deliveries_per_s", "floor"); r.Ratio != 0.8 || r.Verdict != "worse" || r.Ref != 200 || r.OtherValue != 250 {
		t.Errorf("throughput vs floor %+v", r)
	}
	if r := find(ScConnect+".rss_per_conn_bytes", "gorilla"); math.Abs(float64(r.Ratio)-900.0/3500) > 1e-9 || r.Verdict != "better" {
		t.Errorf("rss vs gorilla %+v", r)
	}
	if r := find(ScConnect+".rss_per_conn_bytes", "floor"); r.Ratio.OK() || r.Verdict != "n/a" {
		t.Errorf("rss vs floor (no data) %+v", r)
	}
	for _, r := range ratios {
		if d, _ := metricDef(r.Metric); !d.Headline {
			t.Errorf("ratio for non-headline metric %s", r.Metric)
		}
	}

	res := map[string]TargetResult{}
	for _, r := range Judge(tab, "wspush", Targets) {
		res[r.ID] = r
	}
	for id, want := range map[string]string{
		"idle-rss-gorilla": "NOT met", // 900 > 0.25 × 3500
		"tput-floor":       "met",     // 200 >= 0.8 × 250 (exactly)
		"tput-gorilla":     "NOT met", // 200 < 3 × 75
		"tput-nbio":        "n/a",
		"bcast-floor":      "n/a",
		"churn-fds":        "NOT met", // worst round +3
		"churn-goroutines": "met",     // worst round +1
		"churn-heap":       "n/a",
	} {
		if got := res[id].Status; got != want {
			t.Errorf("target %s: %s (%+v), want %s", id, got, res[id], want)
		}
	}
	if r := res["tput-gorilla"]; r.Bound != 225 || r.Value != 200 {
		t.Errorf("tput-gorilla value %v bound %v", r.Value, r.Bound)
	}
	if r := res["churn-fds"]; r.Value != 3 {
		t.Errorf("churn-fds judged %v, want the worst round 3", r.Value)
	}
	if _, err := json.Marshal(Judge(tab, "wspush", Targets)); err != nil {
		t.Errorf("targets do not encode: %v", err)
	}
}

func TestPlan(t *testing.T) {
	full, quick := Plan(FullSizes), Plan(QuickSizes)
	var ids []string
	for _, s := range full {
		ids = append(ids, s.ID)
	}
	if want := []string{ScConnect, ScChurn, ScBcastSmall, ScBcastLarge, ScThroughput, ScSlow, ScRecover}; !slices.Equal(ids, want) {
		t.Fatalf("order %v, want %v", ids, want)
	}
	has := func(s Scenario, args ...string) bool {
		for i := range s.Args {
			if i+len(args) <= len(s.Args) && slices.Equal(s.Args[i:i+len(args)], args) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		s    Scenario
		args []string
	}{
		{full[0], []string{"-n", "19000", "--baseline", "--keepalive-hold", "16s", "--procs", "2"}},
		{full[1], []string{"--duration", "30s", "--procs", "2"}},
		{full[2], []string{"-n", "1000", "-m", "50", "-s", "128"}},
		{full[3], []string{"-n", "19000", "-m", "20", "-s", "128", "--rate", "2", "--procs", "2"}},
		{full[4], []string{"-n", "10000", "--duration", "20s"}},
		{full[5], []string{"-n", "5000", "-k", "100"}},
		{quick[0], []string{"-n", "2000", "--baseline", "--keepalive-hold", "16s", "--timeout"}},
		{quick[4], []string{"--duration", "5s"}},
	} {
		if !has(tc.s, tc.args...) {
			t.Errorf("%s: args %q lack %q", tc.s.ID, tc.s.Args, tc.args)
		}
	}
	if slices.Contains(full[2].Args, "--procs") || slices.Contains(full[5].Args, "--procs") || slices.Contains(quick[3].Args, "--procs") {
		t.Error("--procs for fewer than 9,000 connections")
	}
	if !slices.Equal(full[1].WspushdArgs, []string{"--server-gc"}) || full[1].Seconds != 30 {
		t.Errorf("churn %+v", full[1])
	}
	if full[0].Title != "connect 19,000, idle memory" || quick[3].Title != "broadcast 128 B to 2,000" {
		t.Errorf("titles %q %q", full[0].Title, quick[3].Title)
	}
	if thousands(1234567) != "1,234,567" || thousands(-1000) != "-1,000" || thousands(999) != "999" {
		t.Error("thousands")
	}
}

func snap(rss, fds int64, metrics map[string]float64) serverstat.Snapshot {
	return serverstat.Snapshot{Proc: &serverstat.Proc{RSS: rss, FDs: fds}, Metrics: metrics}
}

func cpuSnap(cpu float64, metrics map[string]float64) serverstat.Snapshot {
	return serverstat.Snapshot{Proc: &serverstat.Proc{CPU: cpu}, Metrics: metrics}
}

// TestIssueTargets judges issue 11's targets for wspush against the
// coalescing floor, at, above and below each bound.
func TestIssueTargets(t *testing.T) {
	const (
		tput = ScThroughput + ".deliveries_per_s"
		cpu  = ScThroughput + ".cpu_s_per_million"
		idle = ScConnect + ".rss_per_conn_keepalive_bytes"
		base = ScConnect + ".baseline_rss_bytes"
		conn = ScConnect + ".connects_per_s"
		p99  = ScBcastLarge + ".latency_p99_ms"
	)
	for _, tc := range []struct {
		target        string
		metric        string
		wspush, floor []float64 // rounds (floor: nil for none)
		want          string
		bound         float64
	}{
		{"tput-floor", tput, []float64{200, 250, 300}, []float64{310, 312, 320}, "met", 249.6},
		{"tput-floor", tput, []float64{240}, []float64{300}, "met", 240}, // exactly 0.8×
		{"tput-floor", tput, []float64{239}, []float64{300}, "NOT met", 240},
		{"tput-floor", tput, []float64{239}, nil, "n/a", math.NaN()},
		{"cpu-floor", cpu, []float64{3.6}, []float64{3}, "met", 3.6},
		{"cpu-floor", cpu, []float64{3.7, 3.61, 3.0}, []float64{3}, "NOT met", 3.6},
		{"idle-rss-keepalive", idle, []float64{600}, nil, "met", 600},
		{"idle-rss-keepalive", idle, []float64{550, 700, 601}, nil, "NOT met", 600},
		{"baseline-rss", base, []float64{8 << 20}, nil, "met", 8 << 20},
		{"baseline-rss", base, []float64{8<<20 + 4096}, nil, "NOT met", 8 << 20},
		{"connects-floor", conn, []float64{9500}, []float64{10000}, "met", 9500},
		{"connects-floor", conn, []float64{9400}, []float64{10000}, "NOT met", 9500},
		{"bcast-floor", p99, []float64{300}, []float64{300}, "met", 300},
		{"bcast-floor", p99, []float64{301}, []float64{300}, "NOT met", 300},
	} {
		runs := runsOf("wspush", strings.Split(tc.metric, ".")[0], strings.Split(tc.metric, ".")[1], tc.wspush...)
		runs = append(runs, runsOf("floor", strings.Split(tc.metric, ".")[0], strings.Split(tc.metric, ".")[1], tc.floor...)...)
		// The write-per-delivery floor must not be what the targets use.
		runs = append(runs, runsOf("floor-write", strings.Split(tc.metric, ".")[0], strings.Split(tc.metric, ".")[1], 1, 1, 1)...)
		var got *TargetResult
		res := Judge(Aggregate(runs), "wspush", Targets)
		for i := range res {
			if res[i].ID == tc.target {
				got = &res[i]
			}
		}
		switch {
		case got == nil:
			t.Errorf("no target %s", tc.target)
		case got.Metric != tc.metric:
			t.Errorf("%s judges %s, want %s", tc.target, got.Metric, tc.metric)
		case got.Status != tc.want:
			t.Errorf("%s with wspush %v, floor %v: %s (%+v), want %s", tc.target, tc.wspush, tc.floor, got.Status, *got, tc.want)
		case got.Bound.OK() != !math.IsNaN(tc.bound) || (got.Bound.OK() && math.Abs(float64(got.Bound)-tc.bound) > 1e-9):
			t.Errorf("%s: bound %v, want %v", tc.target, got.Bound, tc.bound)
		}
	}
}

func TestExtract(t *testing.T) {
	sum := stats.Summary{Count: 10, P50: 1.5, P99: 9}
	conn := &report.Report{
		Clients: &report.Clients{ConnectsPerSec: 15000, Failed: 2}, Handshake: &sum,
		Server: &report.Server{PerConn: map[string]float64{"rss_bytes": 750, "heap_inuse_bytes": 500, "goroutines": 0, "fds": 1,
			"after_keepalives_rss_bytes": 550, "after_keepalives_heap_inuse_bytes": 450},
			Snapshots: map[string]serverstat.Snapshot{"baseline": snap(10<<20, 14, nil),
				"plateau":   cpuSnap(2.0, map[string]float64{"wspush_pings_sent_total": 100}),
				"keepalive": cpuSnap(2.5, map[string]float64{"wspush_pings_sent_total": 50100})}},
	}
	m := Extract(ScConnect, conn)
	for k, want := range map[string]float64{"connects_per_s": 15000, "failed": 2, "handshake_p50_ms": 1.5, "handshake_p99_ms": 9,
		"rss_per_conn_bytes": 750, "heap_per_conn_bytes": 500, "goroutines_per_conn": 0, "baseline_rss_bytes": 10 << 20,
		"rss_per_conn_keepalive_bytes": 550, "heap_per_conn_keepalive_bytes": 450, "keepalive_pings": 50000, "cpu_us_per_keepalive": 10} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("connect %s = %v (%v), want %v", k, got, ok, want)
		}
	}
	// A peer: no keepalive counters, so no pings and no CPU per keepalive.
	peerConn := &report.Report{Server: &report.Server{Snapshots: map[string]serverstat.Snapshot{
		"plateau": cpuSnap(1, nil), "keepalive": cpuSnap(1.1, nil)}}}
	for _, k := range []string{"keepalive_pings", "cpu_us_per_keepalive"} {
		if v, ok := Extract(ScConnect, peerConn)[k]; ok {
			t.Errorf("peer connect has %s = %v", k, v)
		}
	}
	// A peer: no /metrics, so no heap, goroutines or "settled".
	peer := &report.Report{Churn: &report.Churn{CyclesPerSec: 999, Settled: false},
		Server: &report.Server{Snapshots: map[string]serverstat.Snapshot{"before": snap(5<<20, 10, nil), "after": snap(6<<20, 11, nil)}}}
	m = Extract(ScChurn, peer)
	if m["fds_delta"] != 1 || m["rss_delta_bytes"] != 1<<20 || m["cycles_per_s"] != 999 {
		t.Errorf("peer churn %v", m)
	}
	for _, k := range []string{"settled", "goroutines_delta", "heap_delta_bytes"} {
		if _, ok := m[k]; ok {
			t.Errorf("peer churn has %s", k)
		}
	}
	ws := &report.Report{Churn: &report.Churn{Settled: true}, Server: &report.Server{Snapshots: map[string]serverstat.Snapshot{
		"before": snap(1, 14, map[string]float64{"wspush_connections": 0, "go_goroutines": 16, "go_memstats_heap_inuse_bytes": 4 << 20}),
		"after":  snap(1, 14, map[string]float64{"wspush_connections": 0, "go_goroutines": 17, "go_memstats_heap_inuse_bytes": 3 << 20})}}}
	m = Extract(ScChurn, ws)
	if m["settled"] != 1 || m["goroutines_delta"] != 1 || m["heap_delta_bytes"] != -(1<<20) || m["fds_delta"] != 0 {
		t.Errorf("wspush churn %v", m)
	}

	tp := &report.Report{Latency: &sum, Checks: &report.Checks{Missing: 7, ServerDropped: -1},
		Throughput: &report.Throughput{DeliveriesPerSec: 1e5, ServerCPUSeconds: -1}, Publish: &report.Publish{RatePerSec: 10, API: sum}}
	m = Extract(ScThroughput, tp)
	if m["deliveries_per_s"] != 1e5 || m["missing"] != 7 || m["latency_p99_ms"] != 9 || m["published_per_s"] != 10 {
		t.Errorf("throughput %v", m)
	}
	if _, ok := m["server_dropped"]; ok {
		t.Error("server_dropped without a server counter")
	}
	if _, ok := m["cpu_s_per_million"]; ok {
		t.Error("cpu without a pid")
	}
	slow := &report.Report{Latency: &sum, Series: []stats.Point{{ServerRSS: 20 << 20}, {ServerRSS: 30 << 20}},
		Server: &report.Server{Snapshots: map[string]serverstat.Snapshot{"before": snap(18<<20, 1, nil), "after": snap(25<<20, 1, nil)}}}
	m = Extract(ScSlow, slow)
	if m["rss_max_bytes"] != 30<<20 || m["rss_before_bytes"] != 18<<20 || m["rss_growth_bytes"] != 12<<20 {
		t.Errorf("slow %v", m)
	}
	bc := &report.Report{LastSubscriber: &report.LastSub{Messages: 3, MedianMs: 4, P99Ms: 8}}
	if m = Extract(ScBcastLarge, bc); m["last_sub_median_ms"] != 4 || m["last_sub_p99_ms"] != 8 {
		t.Errorf("broadcast %v", m)
	}
	bc.Cost = &report.DeliveryCost{Deliveries: 100, WireBytesPerDelivery: 412.5, ServerCPUSeconds: 0.0002, ServerCPUUsPerDelivery: 2}
	if m = Extract(ScBcastSmall, bc); m["wire_bytes_per_delivery"] != 412.5 || m["server_cpu_us_per_delivery"] != 2 {
		t.Errorf("broadcast cost %v", m)
	}
	tp.Cost, bc.Cost.ServerCPUSeconds = bc.Cost, -1
	if m = Extract(ScThroughput, tp); m["wire_bytes_per_delivery"] != 412.5 || m["server_cpu_us_per_delivery"] != 0 {
		t.Errorf("throughput cost %v", m)
	}
	if _, ok := Extract(ScBcastLarge, bc)["server_cpu_us_per_delivery"]; ok {
		t.Error("CPU per delivery without a pid")
	}
	if len(Extract(ScConnect, nil)) != 0 || len(Extract("nope", conn)) != 0 {
		t.Error("extract of nothing")
	}
}
