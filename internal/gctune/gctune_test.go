package gctune_test

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/gctune"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		cfg  gctune.Config
		live uint64
		want int
	}{
		{"large heap: the fraction", gctune.Config{}, 100 * mib, 25},
		{"small heap: the minimum headroom", gctune.Config{}, 2 * mib, 50},
		{"tiny heap: never above Go's default", gctune.Config{}, mib / 2, 100},
		{"nothing marked yet", gctune.Config{}, 0, 100},
		{"a larger fraction", gctune.Config{Headroom: 50}, 100 * mib, 50},
		{"fraction above 100 is 100", gctune.Config{Headroom: 300}, 100 * mib, 100},
		{"a larger minimum", gctune.Config{MinHeadroom: 4 * mib}, 8 * mib, 50},
		{"minimum rounds up", gctune.Config{MinHeadroom: 3}, 10, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Percent(tc.live); got != tc.want {
				t.Fatalf("Percent(%d) = %d, want %d", tc.live, got, tc.want)
			}
		})
	}
}

// TestTunerFollowsCollections: the tuner runs after each collection, sets
// the percent its Config gives for the live heap, and Stop restores the
// percent it found.
func TestTunerFollowsCollections(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	// A 64 MiB live heap: the minimum headroom (1 MiB) is below 25%.
	keep := make([]byte, 64<<20)
	tu := gctune.Start(gctune.Config{})
	n := tu.Applied()
	for i := 0; i < 50 && tu.Applied() < n+2; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run on their own goroutine
	}
	if tu.Applied() < n+2 {
		t.Fatalf("the tuner ran %d times after collections, want at least 2", tu.Applied()-n)
	}
	if got := tu.Percent(); got != 25 {
		t.Fatalf("percent with a 64 MiB live heap = %d, want 25", got)
	}
	if got := debug.SetGCPercent(25); got != 25 {
		t.Fatalf("the runtime's GC percent is %d, want 25", got)
	}
	runtime.KeepAlive(keep)
	tu.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("after Stop the GC percent is %d, want the 100 found at Start", got)
	}
	applied := tu.Applied()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if tu.Applied() != applied {
		t.Fatal("the tuner ran after Stop")
	}
}

// TestIdleRelease: garbage left behind by a burst is collected and its
// pages returned to the OS once the process is quiet, once: with nothing
// new to give back the Tuner does not collect again, and after Stop it
// never does.
func TestIdleRelease(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	// A burst: 32 MiB of short-lived garbage, then quiet. It is made with
	// the collector off and before Start, so that it is all garbage the
	// first check sees (not live heap a collection marked mid-burst) and
	// no check sees it half done; Start turns the collector back on.
	debug.SetGCPercent(-1)
	for range 32 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	const period = 20 * time.Millisecond
	tu := gctune.Start(gctune.Config{IdleRelease: period})
	defer tu.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for tu.Releases() == 0 && time.Now().Before(deadline) {
		time.Sleep(period)
	}
	if tu.Releases() == 0 {
		t.Fatal("no idle release within 10 s of a 32 MiB burst")
	}
	if free := heapFree(); free >= gctune.MinRelease {
		t.Fatalf("after the release %d bytes of free heap are still resident, want under %d", free, gctune.MinRelease)
	}
	// Quiet with nothing new: no more collections.
	n := tu.Releases()
	time.Sleep(10 * period)
	if got := tu.Releases(); got != n {
		t.Fatalf("%d more releases in a quiet process with nothing to give back", got-n)
	}
	tu.Stop()
	sink = append(sink, make([]byte, 8<<20))
	sink = nil
	runtime.GC()
	time.Sleep(10 * period)
	if got := tu.Releases(); got != n {
		t.Fatal("a release after Stop")
	}
}

// sink keeps the test's garbage reachable until it drops it.
var sink [][]byte

func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
