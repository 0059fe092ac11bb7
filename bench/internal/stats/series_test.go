package stats

import (
	"math"
	"testing"
)

// TestSeriesRate: a point's rate is taken against the latest earlier point
// at least RateWindow before it, so a phase point a millisecond after a
// periodic one does not turn the clients' lag into a spike.
func TestSeriesRateWindow(t *testing.T) {
	var s Series
	if _, ok := s.Last(); ok {
		t.Fatal("an empty series has a last point")
	}
	for _, p := range []Point{
		{T: 0, Deliveries: 0},
		{T: 0.01, Deliveries: 10},   // only the first point is earlier: 10/0.01
		{T: 0.1, Deliveries: 100},   // against T=0: 100/0.1
		{T: 0.101, Deliveries: 150}, // against T=0.01: 140/0.091
		{T: 0.2, Deliveries: 150},   // against T=0.101: 0
	} {
		s.Add(p)
	}
	want := []float64{0, 1000, 1000, 140 / 0.091, 0}
	pts := s.Points()
	for i, p := range pts {
		if math.Abs(p.Rate-want[i]) > 1e-6 {
			t.Errorf("point %d (t=%v): rate %v, want %v", i, p.T, p.Rate, want[i])
		}
	}
	if last, _ := s.Last(); last != pts[len(pts)-1] {
		t.Errorf("Last %+v, want %+v", last, pts[len(pts)-1])
	}
}
