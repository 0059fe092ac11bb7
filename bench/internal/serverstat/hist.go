package serverstat

import (
	"fmt"
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
)

// Names of the histograms the load tool reads: wspushd's own latency
// figures, from sampled publishes (one per --latency-sample).
const (
	// DeliveryLatency is, per recipient of a sampled publish, the time from
	// its arrival at the node's fan-out to the socket write that carried it.
	DeliveryLatency = "wspush_delivery_latency_seconds"
	// FanoutSeconds is, per sampled publish, the time from its arrival at
	// the fan-out to the write to its last recipient.
	FanoutSeconds = "wspush_fanout_seconds"
)

// selectedHists are the histograms kept in a Snapshot.
var selectedHists = []string{DeliveryLatency, FanoutSeconds}

// Bucket is one cumulative bucket of a histogram: the observations below
// (Prometheus: at or below) UpperBound, in seconds.
type Bucket struct {
	// UpperBound is the bucket's upper bound in seconds (finite).
	UpperBound float64 `json:"le"`
	// Count is the number of observations up to UpperBound, cumulative.
	Count uint64 `json:"count"`
}

// Hist is a Prometheus histogram read from /metrics: its count, sum and
// finite cumulative buckets in ascending order (the +Inf bucket is Count).
type Hist struct {
	// Count is the number of observations.
	Count uint64 `json:"count"`
	// Sum is the sum of the observations, in seconds.
	Sum float64 `json:"sum"`
	// Buckets are the finite buckets, cumulative, by ascending bound.
	Buckets []Bucket `json:"buckets"`
}

// Histogram returns histogram name summed over its series whose labels
// include the given name/value pairs (as in Sum). It reports false when the
// page has no such histogram, no series matches, or the series' bucket
// bounds differ (they cannot be added).
func (m Metrics) Histogram(name string, labels ...string) (Hist, bool) {
	mf, ok := m[name]
	if !ok || mf.GetType() != dto.MetricType_HISTOGRAM {
		return Hist{}, false
	}
	var sum Hist
	found := false
	for _, s := range mf.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		h := fromDTO(s.GetHistogram())
		if !found {
			sum, found = h, true
			continue
		}
		var err error
		if sum, err = sum.Add(h); err != nil {
			return Hist{}, false
		}
	}
	return sum, found
}

// fromDTO converts a parsed histogram, dropping the +Inf bucket.
func fromDTO(p *dto.Histogram) Hist {
	h := Hist{Count: p.GetSampleCount(), Sum: p.GetSampleSum()}
	for _, b := range p.GetBucket() {
		if ub := b.GetUpperBound(); !math.IsInf(ub, +1) {
			h.Buckets = append(h.Buckets, Bucket{UpperBound: ub, Count: b.GetCumulativeCount()})
		}
	}
	slices.SortFunc(h.Buckets, func(a, b Bucket) int {
		switch {
		case a.UpperBound < b.UpperBound:
			return -1
		case a.UpperBound > b.UpperBound:
			return 1
		}
		return 0
	})
	return h
}

// combine applies op to h's and o's counts, which must have the same
// bucket bounds.
func (h Hist) combine(o Hist, op func(a, b uint64) (uint64, error), sum float64) (Hist, error) {
	if len(h.Buckets) != len(o.Buckets) {
		return Hist{}, fmt.Errorf("serverstat: histograms with %d and %d buckets", len(h.Buckets), len(o.Buckets))
	}
	out := Hist{Sum: sum, Buckets: make([]Bucket, len(h.Buckets))}
	var err error
	if out.Count, err = op(h.Count, o.Count); err != nil {
		return Hist{}, err
	}
	for i, b := range h.Buckets {
		if b.UpperBound != o.Buckets[i].UpperBound {
			return Hist{}, fmt.Errorf("serverstat: bucket bounds %g and %g differ", b.UpperBound, o.Buckets[i].UpperBound)
		}
		out.Buckets[i].UpperBound = b.UpperBound
		if out.Buckets[i].Count, err = op(b.Count, o.Buckets[i].Count); err != nil {
			return Hist{}, err
		}
	}
	return out, nil
}

// Add returns h + o (a cluster's nodes as one). The bucket bounds must be
// the same.
func (h Hist) Add(o Hist) (Hist, error) {
	return h.combine(o, func(a, b uint64) (uint64, error) { return a + b, nil }, h.Sum+o.Sum)
}

// Sub returns h − before: what was observed between two readings of the
// same histogram. A count that went down (the server restarted) or bounds
// that differ are an error.
func (h Hist) Sub(before Hist) (Hist, error) {
	return h.combine(before, func(a, b uint64) (uint64, error) {
		if a < b {
			return 0, fmt.Errorf("serverstat: histogram count went down from %d to %d", b, a)
		}
		return a - b, nil
	}, h.Sum-before.Sum)
}

// Quantile estimates the q-quantile (0 <= q <= 1) in seconds as Prometheus's
// histogram_quantile does: it finds the bucket holding the rank q×Count and
// interpolates linearly between its lower bound (the previous bound, 0 for
// the first bucket) and its upper bound. A rank in the +Inf bucket gives
// the highest finite bound. It returns NaN for an empty histogram.
func (h Hist) Quantile(q float64) float64 {
	if h.Count == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for _, b := range h.Buckets {
		if float64(b.Count) >= rank && b.Count > below {
			in := float64(b.Count - below)
			return lower + (b.UpperBound-lower)*(rank-float64(below))/in
		}
		lower, below = b.UpperBound, b.Count
	}
	return lower
}

// HistDelta returns the histogram name observed between two snapshots
// (after − before). It reports false when either snapshot lacks it or the
// two cannot be subtracted.
func HistDelta(before, after Snapshot, name string) (Hist, bool) {
	b, ok1 := before.Hists[name]
	a, ok2 := after.Hists[name]
	if !ok1 || !ok2 {
		return Hist{}, false
	}
	d, err := a.Sub(b)
	return d, err == nil
}
