package latency_test

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestHistBuckets(t *testing.T) {
	tests := []struct {
		d    time.Duration
		le   time.Duration // smallest bound counting it; 0: only +Inf
		less time.Duration // the bound just below, which must not count it
	}{
		{0, latency.Base, 0},
		{-time.Second, latency.Base, 0},
		{latency.Base - 1, latency.Base, 0},
		{latency.Base, 2 * latency.Base, latency.Base},
		{3 * latency.Base, 4 * latency.Base, 2 * latency.Base},
		{time.Millisecond, 1280 * time.Microsecond, 640 * time.Microsecond},
		{time.Hour, 0, latency.UpperBound(latency.NumBuckets - 1)},
	}
	for _, tc := range tests {
		var h latency.Hist
		h.Observe(int64(tc.d))
		s := h.Snapshot()
		if s.Count != 1 {
			t.Fatalf("%v: count %d", tc.d, s.Count)
		}
		if want := max(tc.d, 0).Seconds(); s.SumSeconds != want {
			t.Errorf("%v: sum %v, want %v", tc.d, s.SumSeconds, want)
		}
		if len(s.Cumulative) != latency.NumBuckets {
			t.Errorf("%v: %d buckets, want %d", tc.d, len(s.Cumulative), latency.NumBuckets)
		}
		if tc.le > 0 && s.Cumulative[tc.le.Seconds()] != 1 {
			t.Errorf("%v: bucket < %v holds %d, want 1", tc.d, tc.le, s.Cumulative[tc.le.Seconds()])
		}
		if tc.less > 0 && s.Cumulative[tc.less.Seconds()] != 0 {
			t.Errorf("%v: bucket < %v holds %d, want 0", tc.d, tc.less, s.Cumulative[tc.less.Seconds()])
		}
	}
}

// TestSampleAtMostOnePerInterval: of many publishes arriving together,
// from many goroutines, exactly one is sampled per interval.
func TestSampleAtMostOnePerInterval(t *testing.T) {
	r := latency.NewRecorder(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sampled := 0
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				if r.Sample() != 0 {
					mu.Lock()
					sampled++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if sampled != 1 {
		t.Fatalf("%d publishes sampled, want 1", sampled)
	}
	var off *latency.Recorder = latency.NewRecorder(0)
	if off != nil || off.Sample() != 0 {
		t.Fatal("a recorder with interval 0 samples")
	}
}

// TestProbeFanoutIsLastWrite: the fan-out is the latest write, whatever
// order the writers report in, and a probe nobody wrote records none.
func TestProbeFanoutIsLastWrite(t *testing.T) {
	r := latency.NewRecorder(time.Hour)
	born := r.Sample()
	p := r.NewProbe(born)
	for _, d := range []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, time.Millisecond} {
		p.Written(born + int64(d))
	}
	p.Done()
	if s := r.Delivery.Snapshot(); s.Count != 3 || s.SumSeconds != 0.044 {
		t.Errorf("delivery: %d observations summing %v s, want 3 and 0.044", s.Count, s.SumSeconds)
	}
	f := r.Fanout.Snapshot()
	if f.Count != 1 || f.SumSeconds != 0.04 {
		t.Errorf("fan-out: %d observations summing %v s, want 1 of 0.04", f.Count, f.SumSeconds)
	}
	// A recycled probe starts clean; unwritten, it records no fan-out.
	r.NewProbe(born).Done()
	if got := r.Fanout.Snapshot().Count; got != 1 {
		t.Errorf("fan-out count after an unwritten probe = %d, want 1", got)
	}
}
