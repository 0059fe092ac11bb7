// Package stats owns the load tool's numbers: latency histograms (HdrHistogram,
// in microseconds) with their exact export and merge across processes,
// percentile summaries, the CDF for plots, failure counts by cause, and the
// time series sampled during a run.
//
// Percentiles are only ever computed from a merged histogram, never averaged.
package stats

import (
	"fmt"
	"maps"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 µs to 10 minutes, 3 significant digits.
const (
	lowestUs  = 1
	highestUs = int64(10 * time.Minute / time.Microsecond)
	sigFigs   = 3
)

// Hist is a latency histogram in microseconds. Not safe for concurrent use:
// give each goroutine its own and Merge them.
type Hist struct {
	h *hdrhistogram.Histogram
	// Clamped counts values outside the range that were recorded at its edge.
	Clamped int64
}

// NewHist returns an empty latency histogram.
func NewHist() *Hist {
	return &Hist{h: hdrhistogram.New(lowestUs, highestUs, sigFigs)}
}

// Record adds one latency.
func (h *Hist) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < lowestUs {
		us = lowestUs
		if d < 0 {
			h.Clamped++
		}
	}
	if us > highestUs {
		us = highestUs
		h.Clamped++
	}
	_ = h.h.RecordValue(us) // in range by construction
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 { return h.h.TotalCount() }

// Merge adds every value of o into h, exactly (both use the same geometry).
func (h *Hist) Merge(o *Hist) {
	if o == nil {
		return
	}
	h.h.Merge(o.h)
	h.Clamped += o.Clamped
}

// Snap is the serialisable form of a Hist (hdrhistogram's Snapshot).
type Snap struct {
	// H is hdrhistogram's own export: geometry and counts.
	H *hdrhistogram.Snapshot `json:"h"`
	// Clamped is Hist.Clamped.
	Clamped int64 `json:"clamped,omitempty"`
}

// Export returns a copy of h that survives JSON.
func (h *Hist) Export() Snap {
	s := h.h.Export()
	// Trailing zero counts carry nothing; Import pads them back.
	last := len(s.Counts)
	for last > 0 && s.Counts[last-1] == 0 {
		last--
	}
	s.Counts = s.Counts[:last]
	return Snap{H: s, Clamped: h.Clamped}
}

// ImportHist rebuilds a Hist from a Snap; a zero Snap gives an empty Hist.
// A snapshot that does not validate, or has another geometry, is an error.
func ImportHist(s Snap) (*Hist, error) {
	if s.H == nil {
		return NewHist(), nil
	}
	if err := s.H.Validate(); err != nil {
		return nil, fmt.Errorf("stats: bad histogram snapshot: %w", err)
	}
	if s.H.LowestTrackableValue != lowestUs || s.H.HighestTrackableValue != highestUs || s.H.SignificantFigures != sigFigs {
		return nil, fmt.Errorf("stats: histogram snapshot of another geometry (%d, %d, %d)",
			s.H.LowestTrackableValue, s.H.HighestTrackableValue, s.H.SignificantFigures)
	}
	return &Hist{h: hdrhistogram.Import(s.H), Clamped: s.Clamped}, nil
}

// Quantile returns the value at percentile p (0-100).
func (h *Hist) Quantile(p float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(p)) * time.Microsecond
}

// Summary is a histogram's percentiles in milliseconds.
type Summary struct {
	// Count is how many values there are.
	Count int64 `json:"count"`
	// Mean is the mean, in milliseconds.
	Mean float64 `json:"mean_ms"`
	// P50 is the median, in milliseconds.
	P50 float64 `json:"p50_ms"`
	// P90 is the 90th percentile, in milliseconds.
	P90 float64 `json:"p90_ms"`
	// P99 is the 99th percentile, in milliseconds.
	P99 float64 `json:"p99_ms"`
	// P999 is the 99.9th percentile, in milliseconds.
	P999 float64 `json:"p99_9_ms"`
	// Max is the largest value, in milliseconds.
	Max float64 `json:"max_ms"`
	// Min is the smallest value, in milliseconds.
	Min float64 `json:"min_ms"`
	// Clamp counts values recorded at the histogram's edge (Hist.Clamped).
	Clamp int64 `json:"clamped,omitempty"`
}

// Summarize computes the percentiles of h.
func (h *Hist) Summarize() Summary {
	if h.Count() == 0 {
		return Summary{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Summary{
		Count: h.Count(),
		Mean:  h.h.Mean() / 1000,
		P50:   ms(h.h.ValueAtQuantile(50)),
		P90:   ms(h.h.ValueAtQuantile(90)),
		P99:   ms(h.h.ValueAtQuantile(99)),
		P999:  ms(h.h.ValueAtQuantile(99.9)),
		Max:   ms(h.h.Max()),
		Min:   ms(h.h.Min()),
		Clamp: h.Clamped,
	}
}

// CDFPoint is one point of a latency CDF.
type CDFPoint struct {
	// Ms is the latency in milliseconds.
	Ms float64 `json:"ms"`
	// Fraction is the share of values at or below Ms (0-1).
	Fraction float64 `json:"fraction"`
}

// CDF returns at most maxPoints points of the cumulative distribution.
func (h *Hist) CDF(maxPoints int) []CDFPoint {
	if h.Count() == 0 {
		return nil
	}
	var pts []CDFPoint
	var cum int64
	total := float64(h.Count())
	for _, b := range h.h.Distribution() {
		if b.Count == 0 {
			continue
		}
		cum += b.Count
		pts = append(pts, CDFPoint{Ms: float64(b.To) / 1000, Fraction: float64(cum) / total})
	}
	if maxPoints > 1 && len(pts) > maxPoints {
		out := make([]CDFPoint, 0, maxPoints)
		step := float64(len(pts)-1) / float64(maxPoints-1)
		for i := 0; i < maxPoints; i++ {
			out = append(out, pts[int(float64(i)*step+0.5)])
		}
		pts = out
	}
	return pts
}

// Causes counts events (failures, closes) by cause.
type Causes map[string]int64

// Add counts one event of cause.
func (c Causes) Add(cause string, n int64) { c[cause] += n }

// Merge adds o into c.
func (c Causes) Merge(o Causes) {
	for k, v := range o {
		c[k] += v
	}
}

// Total is the sum over causes.
func (c Causes) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Keys returns the causes in sorted order.
func (c Causes) Keys() []string { return slices.Sorted(maps.Keys(c)) }
