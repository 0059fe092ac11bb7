package serverstat

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// histPage is a /metrics page with wspushd's two latency histograms (a few
// of the 10µs × 2^i buckets) and a counter.
const histPage = `# TYPE wspush_delivery_latency_seconds histogram
wspush_delivery_latency_seconds_bucket{le="1e-05"} 0
wspush_delivery_latency_seconds_bucket{le="2e-05"} 10
wspush_delivery_latency_seconds_bucket{le="4e-05"} 30
wspush_delivery_latency_seconds_bucket{le="8e-05"} 40
wspush_delivery_latency_seconds_bucket{le="+Inf"} 40
wspush_delivery_latency_seconds_sum 0.0012
wspush_delivery_latency_seconds_count 40
# TYPE wspush_fanout_seconds histogram
wspush_fanout_seconds_bucket{node="a",le="0.001"} 1
wspush_fanout_seconds_bucket{node="a",le="0.002"} 3
wspush_fanout_seconds_bucket{node="a",le="+Inf"} 4
wspush_fanout_seconds_sum{node="a"} 0.01
wspush_fanout_seconds_count{node="a"} 4
wspush_fanout_seconds_bucket{node="b",le="0.001"} 0
wspush_fanout_seconds_bucket{node="b",le="0.002"} 1
wspush_fanout_seconds_bucket{node="b",le="+Inf"} 1
wspush_fanout_seconds_sum{node="b"} 0.0015
wspush_fanout_seconds_count{node="b"} 1
# TYPE wspush_connections gauge
wspush_connections 3
`

func hist(count uint64, bounds []float64, cum ...uint64) Hist {
	h := Hist{Count: count}
	for i, b := range bounds {
		h.Buckets = append(h.Buckets, Bucket{UpperBound: b, Count: cum[i]})
	}
	return h
}

func TestHistogram(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(histPage))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := m.Histogram(DeliveryLatency)
	if !ok || d.Count != 40 || len(d.Buckets) != 4 || d.Buckets[1] != (Bucket{2e-5, 10}) || d.Sum != 0.0012 {
		t.Fatalf("delivery = %+v %v", d, ok)
	}
	f, ok := m.Histogram(FanoutSeconds) // both nodes
	if !ok || f.Count != 5 || f.Buckets[0].Count != 1 || f.Buckets[1].Count != 4 || math.Abs(f.Sum-0.0115) > 1e-12 {
		t.Errorf("fanout = %+v %v", f, ok)
	}
	if f, ok := m.Histogram(FanoutSeconds, "node", "b"); !ok || f.Count != 1 {
		t.Errorf("fanout{node=b} = %+v %v", f, ok)
	}
	for _, name := range []string{"wspush_connections", "absent"} {
		if _, ok := m.Histogram(name); ok {
			t.Errorf("%s read as a histogram", name)
		}
	}
	if hs := selectHists(m); len(hs) != 2 {
		t.Errorf("selected %v", hs)
	}
}

func TestHistQuantile(t *testing.T) {
	b := []float64{1e-5, 2e-5, 4e-5, 8e-5}
	for _, tc := range []struct {
		name string
		h    Hist
		q    float64
		want float64
	}{
		{"empty", Hist{Buckets: []Bucket{{1e-5, 0}}}, 0.5, math.NaN()},
		{"all in the first bucket: from 0", hist(4, b, 4, 4, 4, 4), 0.5, 0.5e-5},
		{"middle of the second bucket", hist(10, b, 0, 10, 10, 10), 0.5, 1.5e-5},
		{"rank on a bound", hist(40, b, 0, 10, 30, 40), 0.25, 2e-5},
		{"p50 inside the third bucket", hist(40, b, 0, 10, 30, 40), 0.5, 3e-5},
		{"p99 in the last finite bucket", hist(40, b, 0, 10, 30, 40), 0.99, 4e-5 + 4e-5*(39.6-30)/10},
		{"empty buckets before are skipped", hist(2, b, 0, 0, 0, 2), 0, 4e-5},
		{"q above 1 is 1", hist(40, b, 0, 10, 30, 40), 7, 8e-5},
		{"in +Inf: the highest finite bound", hist(50, b, 0, 10, 30, 40), 0.99, 8e-5},
		{"no finite bucket", Hist{Count: 3}, 0.5, 0},
	} {
		got := tc.h.Quantile(tc.q)
		if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-15) {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestHistDelta(t *testing.T) {
	b := []float64{1e-3, 2e-3}
	before := Snapshot{Hists: map[string]Hist{FanoutSeconds: hist(3, b, 1, 2)}}
	for _, tc := range []struct {
		name  string
		after Snapshot
		want  Hist
		ok    bool
	}{
		{"grown", Snapshot{Hists: map[string]Hist{FanoutSeconds: hist(8, b, 2, 6)}}, hist(5, b, 1, 4), true},
		{"unchanged", before, hist(0, b, 0, 0), true},
		{"missing after", Snapshot{}, Hist{}, false},
		{"went down (restart)", Snapshot{Hists: map[string]Hist{FanoutSeconds: hist(1, b, 1, 1)}}, Hist{}, false},
		{"other bounds", Snapshot{Hists: map[string]Hist{FanoutSeconds: hist(8, []float64{1e-3, 4e-3}, 2, 6)}}, Hist{}, false},
		{"other bucket count", Snapshot{Hists: map[string]Hist{FanoutSeconds: hist(8, []float64{1e-3}, 2)}}, Hist{}, false},
	} {
		got, ok := HistDelta(before, tc.after, FanoutSeconds)
		if ok != tc.ok || (ok && !sameHist(got, tc.want)) {
			t.Errorf("%s: HistDelta = %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if d, ok := HistDelta(Snapshot{}, before, FanoutSeconds); ok {
		t.Errorf("missing before: %+v", d)
	}
}

func sameHist(a, b Hist) bool {
	if a.Count != b.Count || len(a.Buckets) != len(b.Buckets) {
		return false
	}
	for i := range a.Buckets {
		if a.Buckets[i] != b.Buckets[i] {
			return false
		}
	}
	return true
}

// TestHistOfLatencyBuckets reads a page in wspushd's exact bucket layout
// (10µs × 2^i, i = 0..21) and checks the estimate stays within one bucket
// of the observations.
func TestHistOfLatencyBuckets(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("# TYPE wspush_delivery_latency_seconds histogram\n")
	obs := []time.Duration{300 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond, 40 * time.Millisecond}
	for i := range 22 {
		ub := (10 * time.Microsecond) << i
		n := 0
		for _, o := range obs {
			if o < ub {
				n++
			}
		}
		sb.WriteString("wspush_delivery_latency_seconds_bucket{le=\"" + strconv.FormatFloat(ub.Seconds(), 'g', -1, 64) + "\"} " + strconv.Itoa(n) + "\n")
	}
	sb.WriteString("wspush_delivery_latency_seconds_bucket{le=\"+Inf\"} 5\nwspush_delivery_latency_seconds_sum 0.0493\nwspush_delivery_latency_seconds_count 5\n")
	m, err := ParseMetrics(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	h, ok := m.Histogram(DeliveryLatency)
	if !ok || len(h.Buckets) != 22 {
		t.Fatalf("%+v %v", h, ok)
	}
	// 3 ms lies in [2.56, 5.12) ms.
	if p50 := h.Quantile(0.5); p50 < 2.56e-3 || p50 > 5.12e-3 {
		t.Errorf("p50 = %v", p50)
	}
}

func TestTakeAllSumsHists(t *testing.T) {
	withHists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(histPage)) }))
	defer withHists.Close()
	without := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(page)) }))
	defer without.Close()
	a, b := strings.TrimPrefix(withHists.URL, "http://"), strings.TrimPrefix(without.URL, "http://")
	one := Take(context.Background(), 0, a)
	if h := one.Hists[DeliveryLatency]; h.Count != 40 || one.Hists[FanoutSeconds].Count != 5 {
		t.Fatalf("one page: %+v", one.Hists)
	}
	two := TakeAll(context.Background(), nil, []string{a, a})
	if h := two.Hists[DeliveryLatency]; h.Count != 80 || h.Buckets[2].Count != 60 {
		t.Fatalf("two pages: %+v", two.Hists)
	}
	mixed := TakeAll(context.Background(), nil, []string{a, b})
	if len(mixed.Hists) != 0 {
		t.Fatalf("a node without the histograms: %+v", mixed.Hists)
	}
	if none := Take(context.Background(), 0, b); none.Hists != nil {
		t.Fatalf("a page without them: %+v", none.Hists)
	}
}
