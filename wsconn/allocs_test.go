//go:build !race

// The allocation tests of this package. sync.Pool drops a random share of
// Puts under the race detector, so a pooled path's allocation count means
// nothing there: these tests are built only without -race, where make
// test-allocs runs them (in CI too), rather than skipping under it.

package wsconn

import (
	"runtime"
	"testing"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/slowpolicy"
)

// TestDeflateAllocs: compressing a publish once allocates nothing (the
// flate writer, its scratch and the frame's buffer are pooled).
func TestDeflateAllocs(t *testing.T) {
	r := testing.Benchmark(BenchmarkDeflatePublish)
	if a := r.AllocsPerOp(); a != 0 {
		t.Fatalf("%d allocs per compressed publish over %d, want 0", a, r.N)
	}
}

// TestSendToSocketAllocs asserts what BenchmarkSendToSocket reports: the
// write path allocates nothing per message (make test-allocs runs it
// without -race). It counts its own 5,000 messages rather than a
// benchmark's b.N: with make test-allocs's -benchtime 100x the pools'
// one-off refill after warming (frames the writer had not yet released
// when the queue emptied: up to ~90 allocations) read as 1 alloc per
// message about one run in fifteen. Any allocation the write path makes
// per message still shows as at least one per message.
func TestSendToSocketAllocs(t *testing.T) {
	const n = 5000
	for _, tc := range sendCases {
		t.Run(tc.name, func(t *testing.T) {
			send, ts := sendToSocket(t, tc.mode, tc.key)
			send(1000)
			waitQueuedEmpty(t, ts)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			send(n)
			waitQueuedEmpty(t, ts)
			runtime.ReadMemStats(&after)
			if a := (after.Mallocs - before.Mallocs) / n; a != 0 {
				t.Fatalf("%d allocs per message (%d over %d messages), want 0", a, after.Mallocs-before.Mallocs, n)
			}
		})
	}
}

// TestConflatedPushAllocs: a conflated push that replaces a queued frame
// allocates nothing (make test-allocs runs it without -race; the write path
// of a conflated delivery is TestSendToSocketAllocs/conflated).
func TestConflatedPushAllocs(t *testing.T) {
	w := gatedWriter(64, DropOldest)
	push := func(key uint64) {
		f := bpool.NewFrame(64)
		f.B = append(f.B, `{"topic":"prices","seq":1,"data":1}`...)
		f.Slow, f.Conflate = slowpolicy.Conflate, key
		w.push(f, kindData)
	}
	for key := uint64(1); key <= 8; key++ { // eight topics queued
		push(key)
	}
	key := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		push(key%8 + 1)
		key++
	})
	if got := w.pol.stats.Conflated.Load(); got < 1000 {
		t.Fatalf("Conflated = %d after 1000 pushes onto 8 topics' frames", got)
	}
	w.close()
	if allocs != 0 {
		t.Fatalf("a conflated push allocates %.2f times, want 0", allocs)
	}
}
