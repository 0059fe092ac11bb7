package gctune

import (
	"runtime/debug"
	"runtime/metrics"
	"time"

	"golang.org/x/sys/unix"
)

// Idle release: a push server is idle most of the time, and an idle heap
// is rarely collected (nothing allocates), so the garbage of the last
// burst (a connect storm, a metrics scrape) and the free pages the
// scavenger keeps for the next one stay resident for as long as the
// quiet lasts: at 19,000 idle connections about 140 B per connection.
// Every IdleRelease the Tuner looks at the last period; when it was quiet
// (at most one collection ran, and the process used at most QuietCPU of
// one core) and enough is reclaimable, it collects and returns the free
// memory to the operating system (debug.FreeOSMemory). A busy process is
// never touched: its collector runs on its own, and a push server that is
// fanning out but not allocating would pay the release's collection and
// then the page faults of taking the memory back in its next fan-outs
// (measured: a run of slower broadcasts after each release).

// Defaults for the idle release.
const (
	// DefaultIdleRelease is Config.IdleRelease's default.
	DefaultIdleRelease = 5 * time.Second
	// MinRelease is the least reclaimable memory worth a collection.
	MinRelease = 1 << 20
	// QuietCPU is the most CPU, in cores, a quiet process used over the
	// period: an idle node pinging 19,000 connections every 5 s uses about
	// 0.08; one broadcasting to them twice a second, about 0.55 (the
	// recorded bench-compare at d56fab0).
	QuietCPU = 0.25
)

// heapState is what one release check reads.
type heapState struct {
	cycles  uint64        // collections finished so far
	live    uint64        // live heap marked by the last collection
	objects uint64        // heap object bytes, live and garbage
	free    uint64        // free heap pages not yet returned to the OS
	cpu     time.Duration // the process's CPU time (user and system) so far
	at      time.Time     // when it was read
}

var releaseMetrics = []string{
	"/gc/cycles/total:gc-cycles",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
}

// readHeap reads the state into sample (len(releaseMetrics) entries).
func readHeap(sample []metrics.Sample) heapState {
	metrics.Read(sample)
	v := func(i int) uint64 {
		if sample[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[i].Value.Uint64()
	}
	return heapState{cycles: v(0), live: v(1), objects: v(2), free: v(3), cpu: processCPU(), at: time.Now()}
}

// processCPU is the CPU time the process used so far; 0 when unknown
// (then only the collections say whether it is quiet).
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// releaseDue reports whether, going from prev to now (one IdleRelease
// apart), the process was quiet and has enough to give back: at least
// MinRelease and a sixteenth of the live heap.
func releaseDue(prev, now heapState) bool {
	if now.cycles > prev.cycles+1 {
		return false // busy: the collector is running on its own
	}
	if elapsed := now.at.Sub(prev.at); elapsed > 0 && float64(now.cpu-prev.cpu) > QuietCPU*float64(elapsed) {
		return false // busy without allocating: fanning out, say
	}
	garbage := now.objects - min(now.live, now.objects)
	return garbage+now.free >= max(MinRelease, now.live/16)
}

// checkRelease runs on its timer's goroutine: it compares the heap with the
// last check, releases when due, and sets the timer for the next check.
func (t *Tuner) checkRelease() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	now := readHeap(t.releaseSample)
	due := releaseDue(t.lastCheck, now)
	t.lastCheck = now
	t.mu.Unlock()

	if due {
		debug.FreeOSMemory()
		t.releases.Add(1)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if due {
		// The release's own collection is not a sign of work.
		t.lastCheck = readHeap(t.releaseSample)
	}
	if !t.stopped {
		t.releaseTimer.Reset(t.cfg.IdleRelease)
	}
}

// Releases counts the idle releases so far.
func (t *Tuner) Releases() int64 { return t.releases.Load() }
