// Package latency measures how long sampled publishes take to reach their
// recipients' sockets: per recipient, from the publication's arrival at the
// node's fan-out to the socket write that carried it, and per publish, to
// the last recipient's write.
//
// It owns the sampling decision and two lock-free histograms. It never
// reads a clock on the delivery path of an unsampled publish, and it does
// not export anything itself: the server turns Snapshots into Prometheus
// histograms at scrape time.
//
// The flow: the hub asks Recorder.Sample when a publication arrives; a
// sampled one gets a Probe on its shared frame (NewProbe). Every writer
// that writes the frame calls Probe.Written; the frame's last Release
// calls Probe.Done, which records the fan-out and recycles the probe.
package latency

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// epoch is the origin of Now: the monotonic clock, not the wall clock.
var epoch = time.Now()

// Now is a monotonic timestamp in nanoseconds, greater than zero.
func Now() int64 { return int64(time.Since(epoch)) + 1 }

// Buckets: bucket i counts durations below Base<<i; the last one is +Inf.
const (
	// Base is the upper bound of the first bucket.
	Base = 10 * time.Microsecond
	// NumBuckets is the number of finite buckets (up to Base<<(NumBuckets-1),
	// about 21 s).
	NumBuckets = 22
)

// Hist is a histogram of durations with fixed exponential buckets, safe for
// concurrent use without locks. Its zero value is empty and ready.
type Hist struct {
	counts [NumBuckets + 1]atomic.Uint64 // the last is above every bound
	sumNs  atomic.Int64
}

// Observe adds one duration, in nanoseconds (negative counts as 0).
func (h *Hist) Observe(ns int64) {
	ns = max(ns, 0)
	i := bits.Len64(uint64(ns) / uint64(Base))
	h.counts[min(i, NumBuckets)].Add(1)
	h.sumNs.Add(ns)
}

// Snapshot is a Hist read at one moment, in the shape Prometheus wants.
type Snapshot struct {
	Count      uint64
	SumSeconds float64
	// Cumulative maps each finite upper bound, in seconds, to the number
	// of observations below it.
	Cumulative map[float64]uint64
}

// Snapshot reads h. Concurrent Observes may land in a bucket but not yet in
// the sum; the error is one observation.
func (h *Hist) Snapshot() Snapshot {
	s := Snapshot{Cumulative: make(map[float64]uint64, NumBuckets)}
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < NumBuckets {
			s.Cumulative[UpperBound(i).Seconds()] = s.Count
		}
	}
	s.SumSeconds = float64(h.sumNs.Load()) / 1e9
	return s
}

// UpperBound is bucket i's upper bound.
func UpperBound(i int) time.Duration { return Base << i }

// DefaultEvery is the default time between two sampled publishes.
const DefaultEvery = 100 * time.Millisecond

// Recorder decides which publishes are sampled and holds their histograms.
// A nil Recorder samples nothing.
type Recorder struct {
	// Delivery is the time from a sampled publication's arrival to each
	// socket write that carried it.
	Delivery Hist
	// Fanout is the time from a sampled publication's arrival to the write
	// to its last recipient.
	Fanout Hist

	every int64        // ns between samples; immutable
	next  atomic.Int64 // Now at or after which the next publish is sampled
	pool  sync.Pool    // of *Probe
}

// NewRecorder samples at most one publish every interval. An interval of
// zero or less samples nothing (it returns nil).
func NewRecorder(every time.Duration) *Recorder {
	if every <= 0 {
		return nil
	}
	return &Recorder{every: int64(every)}
}

// Sample reports whether the publication arriving now is sampled: its
// arrival time, or 0 when it is not. At most one publish per interval is
// sampled, whichever comes first.
func (r *Recorder) Sample() int64 {
	if r == nil {
		return 0
	}
	now := Now()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+r.every) {
		return 0
	}
	return now
}

// NewProbe starts the timing of a sampled publication that arrived at born
// (from Sample). The caller hangs it on the publication's shared frame.
func (r *Recorder) NewProbe(born int64) *Probe {
	p, _ := r.pool.Get().(*Probe)
	if p == nil {
		p = &Probe{rec: r}
	}
	p.born = born
	return p
}

// Probe times one sampled publication. Written may be called concurrently
// by every writer of its frame; Done is called once, after the last.
type Probe struct {
	rec  *Recorder // immutable
	born int64     // set by NewProbe, read-only while shared
	last atomic.Int64
}

// Written records that the publication reached one recipient's socket at
// now (a Now timestamp).
func (p *Probe) Written(now int64) {
	p.rec.Delivery.Observe(now - p.born)
	for {
		last := p.last.Load()
		if now <= last || p.last.CompareAndSwap(last, now) {
			return
		}
	}
}

// Done ends the probe: the fan-out took until the last Written (nothing is
// recorded when no recipient got it). The probe is recycled; the caller
// drops its pointer.
func (p *Probe) Done() {
	if last := p.last.Load(); last > 0 {
		p.rec.Fanout.Observe(last - p.born)
	}
	p.last.Store(0)
	p.rec.pool.Put(p)
}
