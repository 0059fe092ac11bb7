package suite

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Which way a metric improves.
const (
	Neither = 0
	Higher  = 1
	Lower   = -1
)

// Units of metrics, which decide how values print.
const (
	UnitRate   = "/s"
	UnitMs     = "ms"
	UnitBytes  = "B"
	UnitMiB    = "MiB" // value in bytes, shown in MiB
	UnitDMiB   = "±MiB"
	UnitCount  = ""
	UnitDelta  = "±"
	UnitPerM   = "s/M"
	UnitPerCon = "/conn"
	UnitBool   = "bool"
	UnitSec    = "s"
	UnitUs     = "µs" // value in microseconds
)

// MetricDef describes one metric of one scenario.
type MetricDef struct {
	// Scenario is the scenario ID; Key the metric's key in Extract's map.
	Scenario string `json:"scenario"`
	// Key is the metric's key within its scenario.
	Key string `json:"key"`
	// Label is what the tables show.
	Label string `json:"label"`
	// Unit decides the formatting.
	Unit string `json:"unit"`
	// Better is Higher, Lower or Neither.
	Better int `json:"better"`
	// Headline metrics get a row in the ratio table.
	Headline bool `json:"headline"`
}

// ID is "scenario.key".
func (d MetricDef) ID() string { return d.Scenario + "." + d.Key }

// Metrics lists every metric the suite shows, in table order.
var Metrics = []MetricDef{
	{ScConnect, "connects_per_s", "connects/s", UnitRate, Higher, true},
	{ScConnect, "handshake_p50_ms", "handshake p50", UnitMs, Lower, false},
	{ScConnect, "handshake_p99_ms", "handshake p99", UnitMs, Lower, true},
	{ScConnect, "failed", "failed dials", UnitCount, Lower, false},
	{ScConnect, "baseline_rss_bytes", "idle server RSS (baseline)", UnitMiB, Lower, false},
	{ScConnect, "baseline_rss_anon_bytes", "idle server RSS (baseline): private anonymous part", UnitMiB, Lower, false},
	{ScConnect, "rss_per_conn_bytes", "idle RSS per connection, fresh", UnitBytes, Lower, true},
	{ScConnect, "rss_per_conn_keepalive_bytes", "idle RSS per connection after keepalives", UnitBytes, Lower, true},
	{ScConnect, "heap_per_conn_bytes", "Go heap in use per connection, fresh", UnitBytes, Lower, false},
	{ScConnect, "heap_per_conn_keepalive_bytes", "Go heap in use per connection after keepalives", UnitBytes, Lower, false},
	{ScConnect, "goroutines_per_conn", "goroutines per connection", UnitPerCon, Lower, false},
	{ScConnect, "keepalive_pings", "keepalive pings sent during the keepalive hold", UnitCount, Neither, false},
	{ScConnect, "cpu_us_per_keepalive", "server CPU per keepalive (ping+pong)", UnitUs, Lower, false},
	{ScChurn, "cycles_per_s", "cycles/s", UnitRate, Higher, false},
	{ScChurn, "failed", "failed cycles", UnitCount, Lower, false},
	{ScChurn, "settled", "connections back to start", UnitBool, Higher, false},
	{ScChurn, "fds_delta", "fds after − before", UnitDelta, Lower, false},
	{ScChurn, "goroutines_delta", "goroutines after − before", UnitDelta, Lower, false},
	{ScChurn, "heap_delta_bytes", "heap in use after − before", UnitDMiB, Lower, false},
	{ScChurn, "rss_delta_bytes", "RSS after − before", UnitDMiB, Lower, false},
	{ScBcastSmall, "latency_p50_ms", "per delivery p50", UnitMs, Lower, false},
	{ScBcastSmall, "latency_p99_ms", "per delivery p99", UnitMs, Lower, true},
	{ScBcastSmall, "last_sub_median_ms", "last subscriber median", UnitMs, Lower, false},
	{ScBcastSmall, "last_sub_p99_ms", "last subscriber p99", UnitMs, Lower, false},
	{ScBcastSmall, "publish_api_p99_ms", "publish API p99", UnitMs, Lower, false},
	{ScBcastSmall, "server_delivery_p50_ms", "server-measured delivery p50", UnitMs, Lower, false},
	{ScBcastSmall, "server_delivery_p99_ms", "server-measured delivery p99", UnitMs, Lower, false},
	{ScBcastSmall, "server_fanout_p50_ms", "server-measured fan-out p50", UnitMs, Lower, false},
	{ScBcastSmall, "server_latency_samples", "server latency samples (publishes)", UnitCount, Neither, false},
	{ScBcastSmall, "clients_minus_server_p50_ms", "clients minus server p50", UnitMs, Neither, false},
	{ScBcastSmall, "latency_agrees", "latency agreement", UnitBool, Higher, false},
	{ScBcastSmall, "missing", "missing deliveries", UnitCount, Lower, false},
	{ScBcastSmall, "wire_bytes_per_delivery", "bytes on the wire per delivery", UnitBytes, Lower, false},
	{ScBcastSmall, "server_cpu_us_per_delivery", "server CPU per delivery (whole run, keepalives included)", UnitUs, Lower, false},
	{ScBcastLarge, "latency_p50_ms", "per delivery p50", UnitMs, Lower, false},
	{ScBcastLarge, "latency_p99_ms", "per delivery p99", UnitMs, Lower, true},
	{ScBcastLarge, "last_sub_median_ms", "last subscriber median", UnitMs, Lower, true},
	{ScBcastLarge, "last_sub_p99_ms", "last subscriber p99", UnitMs, Lower, true},
	{ScBcastLarge, "publish_api_p99_ms", "publish API p99", UnitMs, Lower, false},
	{ScBcastLarge, "server_delivery_p50_ms", "server-measured delivery p50", UnitMs, Lower, false},
	{ScBcastLarge, "server_delivery_p99_ms", "server-measured delivery p99", UnitMs, Lower, false},
	{ScBcastLarge, "server_fanout_p50_ms", "server-measured fan-out p50", UnitMs, Lower, false},
	{ScBcastLarge, "server_latency_samples", "server latency samples (publishes)", UnitCount, Neither, false},
	{ScBcastLarge, "clients_minus_server_p50_ms", "clients minus server p50", UnitMs, Neither, false},
	{ScBcastLarge, "latency_agrees", "latency agreement", UnitBool, Higher, false},
	{ScBcastLarge, "missing", "missing deliveries", UnitCount, Lower, false},
	{ScBcastLarge, "wire_bytes_per_delivery", "bytes on the wire per delivery", UnitBytes, Lower, false},
	{ScBcastLarge, "server_cpu_us_per_delivery", "server CPU per delivery (whole run, keepalives included)", UnitUs, Lower, false},
	{ScThroughput, "deliveries_per_s", "deliveries/s", UnitRate, Higher, true},
	{ScThroughput, "published_per_s", "publishes/s", UnitRate, Higher, false},
	{ScThroughput, "latency_p50_ms", "per delivery p50 under load", UnitMs, Lower, false},
	{ScThroughput, "latency_p99_ms", "per delivery p99 under load", UnitMs, Lower, true},
	{ScThroughput, "cpu_s_per_million", "server CPU s per million deliveries", UnitPerM, Lower, true},
	{ScThroughput, "client_cpu_s_per_million", "bench clients' CPU s per million deliveries (same cores)", UnitPerM, Neither, false},
	{ScThroughput, "missing", "drops (deliveries missing at clients)", UnitCount, Lower, false},
	{ScThroughput, "server_dropped", "drops counted by the server", UnitCount, Lower, false},
	{ScThroughput, "wire_bytes_per_delivery", "bytes on the wire per delivery", UnitBytes, Lower, false},
	{ScSlow, "latency_p50_ms", "readers' p50", UnitMs, Lower, false},
	{ScSlow, "latency_p99_ms", "readers' p99", UnitMs, Lower, true},
	{ScSlow, "missing", "readers' missing deliveries", UnitCount, Lower, false},
	{ScSlow, "server_dropped", "drops counted by the server", UnitCount, Lower, false},
	{ScSlow, "rss_before_bytes", "server RSS before publishing", UnitMiB, Lower, false},
	{ScSlow, "rss_max_bytes", "server RSS max", UnitMiB, Lower, true},
	{ScSlow, "rss_growth_bytes", "server RSS max − before publishing", UnitDMiB, Lower, false},
	{ScRecover, "catch_up_p50_ms", "catch-up per client p50", UnitMs, Lower, false},
	{ScRecover, "catch_up_p99_ms", "catch-up per client p99", UnitMs, Lower, true},
	{ScRecover, "last_caught_up_ms", "until the last client caught up", UnitMs, Lower, true},
	{ScRecover, "server_cpu_s", "server CPU during the catch-up", UnitSec, Lower, false},
	{ScRecover, "missing", "missed messages not recovered", UnitCount, Lower, false},
}

// metricDef returns the definition of id ("scenario.key").
func metricDef(id string) (MetricDef, bool) {
	for _, d := range Metrics {
		if d.ID() == id {
			return d, true
		}
	}
	return MetricDef{}, false
}

// Stat is one metric of one server over the rounds.
type Stat struct {
	// Median, Min and Max are over Values.
	Median float64 `json:"median"`
	// Min is the smallest value.
	Min float64 `json:"min"`
	// Max is the largest value.
	Max float64 `json:"max"`
	// Values are the rounds' values, in round order.
	Values []float64 `json:"values"`
}

// Median returns the median of v (the mean of the middle two for an even
// count), NaN for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Table holds, per server and metric ID, the metric over the rounds.
type Table map[string]map[string]*Stat

// Get returns server's stat for metric id.
func (t Table) Get(server, id string) (*Stat, bool) {
	s, ok := t[server][id]
	return s, ok
}

// Aggregate collects the runs' metrics into a Table with medians.
func Aggregate(runs []RunRecord) Table {
	t := Table{}
	for _, r := range runs {
		for k, v := range r.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if t[r.Server] == nil {
				t[r.Server] = map[string]*Stat{}
			}
			id := r.Scenario + "." + k
			s := t[r.Server][id]
			if s == nil {
				s = &Stat{}
				t[r.Server][id] = s
			}
			s.Values = append(s.Values, v)
		}
	}
	for _, m := range t {
		for _, s := range m {
			s.Median = Median(s.Values)
			s.Min, s.Max = slices.Min(s.Values), slices.Max(s.Values)
		}
	}
	return t
}

// Num is a float64 that encodes NaN and ±Inf (n/a) as JSON null.
type Num float64

// NaN is the n/a Num.
func NaN() Num { return Num(math.NaN()) }

// OK tells whether n holds a number.
func (n Num) OK() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

// MarshalJSON writes null for n/a.
func (n Num) MarshalJSON() ([]byte, error) {
	if !n.OK() {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

// UnmarshalJSON reads null as n/a.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = NaN()
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = Num(f)
	return err
}

// Ratio compares the reference server with one other on one metric.
type Ratio struct {
	// Metric is the metric ID.
	Metric string `json:"metric"`
	// Other is the server compared against.
	Other string `json:"other"`
	// Ref and OtherValue are the medians.
	Ref Num `json:"ref"`
	// OtherValue is the other server's median.
	OtherValue Num `json:"other_value"`
	// Ratio is Ref / OtherValue (n/a when either is missing or it is 0).
	Ratio Num `json:"ratio"`
	// Verdict is "better", "worse", "even" (within 2%) or "n/a".
	Verdict string `json:"verdict"`
}

// Verdict judges ratio = ours/theirs for a metric that improves in
// direction better: within 2% of 1 is "even".
func Verdict(ratio Num, better int) string {
	switch {
	case !ratio.OK() || better == Neither:
		return "n/a"
	case math.Abs(float64(ratio)-1) <= 0.02:
		return "even"
	case (ratio > 1) == (better == Higher):
		return "better"
	}
	return "worse"
}

// Ratios compares ref's medians with each of others' on every headline
// metric, metric by metric.
func Ratios(t Table, ref string, others []string) []Ratio {
	var out []Ratio
	for _, d := range Metrics {
		if !d.Headline {
			continue
		}
		for _, o := range others {
			r := Ratio{Metric: d.ID(), Other: o, Ref: NaN(), OtherValue: NaN(), Ratio: NaN()}
			a, ok1 := t.Get(ref, d.ID())
			b, ok2 := t.Get(o, d.ID())
			if ok1 {
				r.Ref = Num(a.Median)
			}
			if ok2 {
				r.OtherValue = Num(b.Median)
			}
			if ok1 && ok2 && b.Median != 0 {
				r.Ratio = Num(a.Median / b.Median)
			}
			r.Verdict = Verdict(r.Ratio, d.Better)
			out = append(out, r)
		}
	}
	return out
}

// Target is one performance target of the reference server: its metric
// (the median over rounds, or the worst round with Worst) compared with
// Factor × the other server's median, or with Abs when Other is empty.
type Target struct {
	// ID names the target.
	ID string `json:"id"`
	// Text states it.
	Text string `json:"text"`
	// Metric is the metric ID.
	Metric string `json:"metric"`
	// Worst judges the worst round instead of the median.
	Worst bool `json:"worst,omitempty"`
	// Op is "<", "<=" or ">=".
	Op string `json:"op"`
	// Other is the server compared with ("": Abs is the bound).
	Other string `json:"other,omitempty"`
	// Factor multiplies the other server's median.
	Factor float64 `json:"factor,omitempty"`
	// Abs is the absolute bound when Other is empty.
	Abs float64 `json:"abs,omitempty"`
	// Also are further metric IDs held to the same bound: the target is
	// judged on the worst of Metric's and theirs (those measured).
	Also []string `json:"also,omitempty"`
}

// Targets are the standard targets. Peers are found by the names gorilla,
// nbio and floor (the coalescing floor, bench/peers/floor's default mode).
// The first six are issue 11's: wspush against an honest floor, and idle
// memory in its steady state; so is the last, latency-agrees: the server's
// own latency histograms agree with what its clients see, in both
// broadcasts (scenario.AgreementBound states the allowance).
var Targets = []Target{
	{ID: "tput-floor", Text: "throughput to 10,000: at least 0.8× the floor's deliveries/s", Metric: ScThroughput + ".deliveries_per_s", Op: ">=", Other: "floor", Factor: 0.8},
	{ID: "cpu-floor", Text: "throughput: server CPU per delivery at most 1.2× the floor's", Metric: ScThroughput + ".cpu_s_per_million", Op: "<=", Other: "floor", Factor: 1.2},
	{ID: "idle-rss-keepalive", Text: "idle RSS per connection at 19,000, read after three ping intervals, at most 600 B", Metric: ScConnect + ".rss_per_conn_keepalive_bytes", Op: "<=", Abs: 600},
	{ID: "baseline-rss", Text: "baseline RSS (no connection) at most 8 MiB", Metric: ScConnect + ".baseline_rss_bytes", Op: "<=", Abs: 8 << 20},
	{ID: "connects-floor", Text: "connects/s at least 0.95× the floor's", Metric: ScConnect + ".connects_per_s", Op: ">=", Other: "floor", Factor: 0.95},
	{ID: "bcast-floor", Text: "broadcast to 19,000: per-delivery p99 at most 1.0× the floor's", Metric: ScBcastLarge + ".latency_p99_ms", Op: "<=", Other: "floor", Factor: 1},
	{ID: "idle-rss-gorilla", Text: "idle RSS per connection (fresh) at most ¼ of gorilla's", Metric: ScConnect + ".rss_per_conn_bytes", Op: "<=", Other: "gorilla", Factor: 0.25},
	{ID: "bcast-nbio", Text: "broadcast to 19,000: p99 no worse than nbio's", Metric: ScBcastLarge + ".latency_p99_ms", Op: "<=", Other: "nbio", Factor: 1},
	{ID: "tput-nbio", Text: "throughput to 10,000: at least nbio's deliveries/s", Metric: ScThroughput + ".deliveries_per_s", Op: ">=", Other: "nbio", Factor: 1},
	{ID: "tput-gorilla", Text: "throughput to 10,000: at least 3× gorilla's deliveries/s", Metric: ScThroughput + ".deliveries_per_s", Op: ">=", Other: "gorilla", Factor: 3},
	{ID: "churn-fds", Text: "churn: no growth in fds (worst round, ≤ +2)", Metric: ScChurn + ".fds_delta", Worst: true, Op: "<=", Abs: 2},
	{ID: "churn-goroutines", Text: "churn: no growth in goroutines (worst round, ≤ +2)", Metric: ScChurn + ".goroutines_delta", Worst: true, Op: "<=", Abs: 2},
	{ID: "churn-heap", Text: "churn: no growth in heap (worst round, ≤ +1 MiB)", Metric: ScChurn + ".heap_delta_bytes", Worst: true, Op: "<=", Abs: 1 << 20},
	// Both broadcasts' agreement (the median round of each; the worse of the two).
	{ID: "latency-agrees", Text: "server latency metric agrees with the clients", Metric: ScBcastLarge + ".latency_agrees",
		Also: []string{ScBcastSmall + ".latency_agrees"}, Op: ">=", Abs: 1},
}

// TargetResult is a Target judged against a Table.
type TargetResult struct {
	Target
	// Value is the reference server's figure, Bound what it is held to.
	Value Num `json:"value"`
	// Bound is Factor × the other's median, or Abs.
	Bound Num `json:"bound"`
	// Status is "met", "NOT met" or "n/a".
	Status string `json:"status"`
	// Detail explains n/a.
	Detail string `json:"detail,omitempty"`
}

// Judge evaluates targets for the reference server ref.
func Judge(t Table, ref string, targets []Target) []TargetResult {
	out := make([]TargetResult, 0, len(targets))
	for _, tg := range targets {
		out = append(out, judgeOne(t, ref, tg))
	}
	return out
}

// judgeOne evaluates one target for ref.
func judgeOne(t Table, ref string, tg Target) TargetResult {
	r := TargetResult{Target: tg, Value: NaN(), Bound: NaN(), Status: "n/a"}
	if tg.Other == "" {
		r.Bound = Num(tg.Abs)
	} else if o, ok := t.Get(tg.Other, tg.Metric); ok {
		r.Bound = Num(tg.Factor * o.Median)
	}
	v, ok := refValue(t, ref, tg)
	r.Value = v
	switch {
	case !ok:
		r.Detail = fmt.Sprintf("no %s for %s in this run", tg.Metric, ref)
		return r
	case !r.Bound.OK():
		r.Detail = fmt.Sprintf("no %s in this run", tg.Other)
		return r
	}
	// A value at a computed bound (1.2 × 3 is 3.5999...) is at it.
	eps := Num(1e-9 * max(math.Abs(float64(r.Bound)), 1))
	met := false
	switch tg.Op {
	case "<":
		met = r.Value < r.Bound
	case "<=":
		met = r.Value <= r.Bound+eps
	case ">=":
		met = r.Value >= r.Bound-eps
	}
	r.Status = "NOT met"
	if met {
		r.Status = "met"
	}
	return r
}

// refValue is ref's figure for tg: its metric's median over the rounds
// (the worst round with Worst), and with Also the worst such figure of
// the metrics measured. It reports false when none was.
func refValue(t Table, ref string, tg Target) (Num, bool) {
	v, found := NaN(), false
	for _, id := range append([]string{tg.Metric}, tg.Also...) {
		s, ok := t.Get(ref, id)
		if !ok {
			continue
		}
		x := Num(s.Median)
		if tg.Worst {
			d, _ := metricDef(id)
			x = Num(s.Max)
			if d.Better == Higher {
				x = Num(s.Min)
			}
		}
		if !found || (tg.Op == ">=") == (x < v) {
			v, found = x, true
		}
	}
	return v, found
}
