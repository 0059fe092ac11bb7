package stats

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// TestMergeIsExact feeds the same values to one histogram and, split over
// three "children", to three; the children travel through JSON and are
// merged. Every percentile must be equal, not close.
func TestMergeIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	one := NewHist()
	kids := []*Hist{NewHist(), NewHist(), NewHist()}
	for i := 0; i < 200000; i++ {
		// A long-tailed mix: mostly sub-millisecond, some seconds.
		var d time.Duration
		switch rng.IntN(10) {
		case 0:
			d = time.Duration(rng.Int64N(int64(3 * time.Second)))
		default:
			d = time.Duration(rng.Int64N(int64(800 * time.Microsecond)))
		}
		one.Record(d)
		kids[rng.IntN(len(kids))].Record(d)
	}
	merged := NewHist()
	for _, k := range kids {
		b, err := json.Marshal(k.Export())
		if err != nil {
			t.Fatal(err)
		}
		var s Snap
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		h, err := ImportHist(s)
		if err != nil {
			t.Fatal(err)
		}
		merged.Merge(h)
	}
	if merged.Count() != one.Count() {
		t.Fatalf("count %d, want %d", merged.Count(), one.Count())
	}
	for _, q := range []float64{0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100} {
		if got, want := merged.Quantile(q), one.Quantile(q); got != want {
			t.Errorf("p%v = %v, want %v", q, got, want)
		}
	}
	if got, want := merged.Summarize(), one.Summarize(); got != want {
		t.Errorf("summary %+v, want %+v", got, want)
	}
	if !merged.h.Equals(one.h) {
		t.Error("merged histogram differs from the single one")
	}
}

func TestClampAndEmpty(t *testing.T) {
	h := NewHist()
	if s := h.Summarize(); s.Count != 0 {
		t.Fatalf("empty summary %+v", s)
	}
	if h.CDF(10) != nil {
		t.Fatal("empty CDF not nil")
	}
	h.Record(-time.Second)
	h.Record(time.Hour)
	h.Record(time.Millisecond)
	if h.Clamped != 2 || h.Count() != 3 {
		t.Fatalf("clamped %d count %d", h.Clamped, h.Count())
	}
	e, err := ImportHist(Snap{})
	if err != nil || e.Count() != 0 {
		t.Fatalf("zero snap: %v %v", e, err)
	}
	bad := h.Export()
	bad.H.SignificantFigures = 2
	if _, err := ImportHist(bad); err == nil {
		t.Fatal("a snapshot of another geometry was accepted")
	}
}

func TestCDF(t *testing.T) {
	h := NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	pts := h.CDF(50)
	if len(pts) == 0 || len(pts) > 50 {
		t.Fatalf("%d points", len(pts))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Ms < pts[i-1].Ms || pts[i].Fraction < pts[i-1].Fraction {
			t.Fatalf("not monotone at %d: %+v %+v", i, pts[i-1], pts[i])
		}
	}
	if last := pts[len(pts)-1]; last.Fraction != 1 {
		t.Fatalf("last point %+v", last)
	}
}

func TestSeriesRate(t *testing.T) {
	var s Series
	s.Add(Point{T: 0, Deliveries: 0})
	s.Add(Point{T: 2, Deliveries: 1000})
	pts := s.Points()
	if pts[1].Rate != 500 {
		t.Fatalf("rate %v", pts[1].Rate)
	}
}

func TestCauses(t *testing.T) {
	c := Causes{}
	c.Add("b", 2)
	c.Merge(Causes{"a": 1, "b": 1})
	if c.Total() != 4 || c["b"] != 3 {
		t.Fatalf("%v", c)
	}
	if k := c.Keys(); len(k) != 2 || k[0] != "a" {
		t.Fatalf("keys %v", k)
	}
}
