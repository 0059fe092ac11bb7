package gctune_test

import (
	"runtime"
	"runtime/debug"
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
