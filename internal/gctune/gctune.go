// Package gctune sets the garbage collector's headroom for a process whose
// heap is mostly long-lived connection state.
//
// With GOGC=100 the Go heap may grow to twice the live heap before a
// collection, and the runtime keeps about that much memory from the
// operating system. For a push server the live heap is mostly its idle
// connections, so that doubling is paid per connection. The Tuner instead
// keeps the headroom at a fraction of the live heap (at least MinHeadroom,
// so a small heap is not collected on every few allocations): after every
// collection it sets the GC percent from the live heap just marked.
//
// When the process is quiet it also returns the heap's garbage and free
// pages to the operating system (release.go).
//
// It owns the process's GC percent while it runs, and the forced
// collections of its idle release, and nothing else; it starts no
// goroutine of its own (the tuning runs as a cleanup after each
// collection, the release check on a time.AfterFunc timer).
package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config's zero fields.
const (
	// DefaultHeadroom is Config.Headroom's default, in percent of the live
	// heap.
	DefaultHeadroom = 25
	// DefaultMinHeadroom is Config.MinHeadroom's default.
	DefaultMinHeadroom = 1 << 20
)

// Config is the headroom policy.
type Config struct {
	// Headroom is the heap growth allowed between collections, in percent
	// of the live heap; never above 100 (Go's default). Zero means
	// DefaultHeadroom.
	Headroom int
	// MinHeadroom is the least growth allowed, in bytes. Zero means
	// DefaultMinHeadroom.
	MinHeadroom uint64
	// IdleRelease is how often the Tuner checks for a quiet process whose
	// garbage and free pages it should return to the operating system
	// (release.go). Zero means DefaultIdleRelease; negative turns it off.
	IdleRelease time.Duration
}

// Percent is the GC percent that gives a live heap of live bytes the
// headroom c asks for: Headroom, raised to cover MinHeadroom, at most 100.
func (c Config) Percent(live uint64) int {
	c = c.withDefaults()
	p := c.Headroom
	if live > 0 {
		p = max(p, int(math.Ceil(100*float64(c.MinHeadroom)/float64(live))))
	} else {
		p = 100
	}
	return min(p, 100)
}

func (c Config) withDefaults() Config {
	if c.Headroom <= 0 {
		c.Headroom = DefaultHeadroom
	}
	c.Headroom = min(c.Headroom, 100)
	if c.MinHeadroom == 0 {
		c.MinHeadroom = DefaultMinHeadroom
	}
	if c.IdleRelease == 0 {
		c.IdleRelease = DefaultIdleRelease
	}
	return c
}

// Tuner applies a Config after every collection until Stop.
type Tuner struct {
	cfg     Config // immutable, defaults applied
	applied atomic.Int64
	percent atomic.Int64 // the GC percent set last

	releases atomic.Int64 // idle releases done

	// mu serialises apply (Start, then the cleanup goroutine) and the
	// release checks with Stop, so nothing sets the percent or arms a
	// check after Stop.
	mu      sync.Mutex
	stopped bool             // guarded by mu
	prev    int              // GC percent before Start; immutable
	sample  []metrics.Sample // guarded by mu
	// releaseTimer fires the release checks, nil when off; set by Start,
	// reset by each check unless stopped, both under mu. lastCheck is the
	// heap the last check read; releaseSample its metrics buffer; both
	// guarded by mu.
	releaseTimer  *time.Timer
	lastCheck     heapState
	releaseSample []metrics.Sample
}

// sentinel is garbage whose cleanup runs after the collection that found it
// unreachable.
type sentinel struct{ _ [16]byte }

// Start applies cfg now and after every collection, and returns the Tuner.
func Start(cfg Config) *Tuner {
	t := &Tuner{cfg: cfg.withDefaults(), sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	for _, name := range releaseMetrics {
		t.releaseSample = append(t.releaseSample, metrics.Sample{Name: name})
	}
	t.prev = debug.SetGCPercent(100)
	debug.SetGCPercent(t.prev)
	t.apply()
	t.arm()
	t.mu.Lock()
	t.lastCheck = readHeap(t.releaseSample)
	if t.cfg.IdleRelease > 0 {
		t.releaseTimer = time.AfterFunc(t.cfg.IdleRelease, t.checkRelease)
	}
	t.mu.Unlock()
	return t
}

// arm registers the cleanup that runs after the next collection.
func (t *Tuner) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(t *Tuner) {
		if t.apply() {
			t.arm()
		}
	}, t)
}

// apply sets the GC percent for the live heap the last collection marked.
// It reports false once the Tuner is stopped.
func (t *Tuner) apply() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := t.cfg.Percent(live)
	if int64(p) != t.percent.Load() {
		debug.SetGCPercent(p)
		t.percent.Store(int64(p))
	}
	t.applied.Add(1)
	return true
}

// Percent is the GC percent set last.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// Applied counts the times the Tuner ran: at Start and after each
// collection.
func (t *Tuner) Applied() int64 { return t.applied.Load() }

// Stop ends the tuning and the idle release, and restores the GC percent
// found at Start. A release check already running finishes on its own.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	if t.releaseTimer != nil {
		t.releaseTimer.Stop()
	}
	debug.SetGCPercent(t.prev)
}
