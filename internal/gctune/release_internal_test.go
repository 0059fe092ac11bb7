package gctune

import (
	"testing"
	"time"
)

func TestReleaseDue(t *testing.T) {
	const mib = 1 << 20
	t0 := time.Unix(1_000_000, 0)
	idle := heapState{cycles: 10, live: 64 * mib, cpu: time.Minute, at: t0}
	later := t0.Add(5 * time.Second)
	for _, tc := range []struct {
		name string
		now  heapState
		want bool
	}{
		{"quiet, nothing to give back", heapState{cycles: 10, live: 64 * mib, objects: 64 * mib}, false},
		{"quiet, garbage over a sixteenth", heapState{cycles: 10, live: 64 * mib, objects: 69 * mib}, true},
		{"quiet, free pages over a sixteenth", heapState{cycles: 10, live: 64 * mib, objects: 64 * mib, free: 5 * mib}, true},
		{"quiet, garbage and free pages together", heapState{cycles: 10, live: 64 * mib, objects: 66 * mib, free: 3 * mib}, true},
		{"quiet, under a sixteenth", heapState{cycles: 10, live: 64 * mib, objects: 66 * mib, free: mib}, false},
		{"one collection is still quiet", heapState{cycles: 11, live: 64 * mib, objects: 70 * mib}, true},
		{"two collections: busy", heapState{cycles: 12, live: 64 * mib, objects: 90 * mib}, false},
		{"small heap: at least MinRelease", heapState{cycles: 10, live: mib, objects: mib + mib/2}, false},
		{"small heap over MinRelease", heapState{cycles: 10, live: mib, objects: mib, free: 2 * mib}, true},
		{"objects under live (read between a mark and its sweep)", heapState{cycles: 10, live: 64 * mib, objects: 60 * mib}, false},
		{"quiet CPU: a tenth of a core", heapState{cycles: 10, live: 64 * mib, objects: 69 * mib, cpu: time.Minute + 500*time.Millisecond, at: later}, true},
		{"busy CPU: fanning out without allocating", heapState{cycles: 10, live: 64 * mib, objects: 69 * mib, cpu: time.Minute + 2*time.Second, at: later}, false},
		{"just over a quarter of a core", heapState{cycles: 10, live: 64 * mib, objects: 69 * mib, cpu: time.Minute + 1300*time.Millisecond, at: later}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := releaseDue(idle, tc.now); got != tc.want {
				t.Fatalf("releaseDue(%+v) = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
}
