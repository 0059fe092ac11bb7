//go:build !race

// The allocation tests of this package. sync.Pool drops a random share of
// Puts under the race detector, so a pooled path's allocation count means
// nothing there: these tests are built only without -race, where make
// test-allocs runs them (in CI too), rather than skipping under it.

package bpool_test

import (
	"fmt"
	"testing"

	"github.com/wspush/wspush/internal/bpool"
)

func TestGetPutAllocs(t *testing.T) {
	for _, n := range []int{64, 4096, bpool.MaxPooled} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bpool.Put(bpool.Get(n)) // warm up
			allocs := testing.AllocsPerRun(200, func() {
				bp := bpool.Get(n)
				*bp = append(*bp, 1, 2, 3)
				bpool.Put(bp)
			})
			if allocs != 0 {
				t.Fatalf("Get/Put(%d) allocates %.1f times per run, want 0", n, allocs)
			}
		})
	}
}

func TestFrameAllocs(t *testing.T) {
	bpool.NewFrame(512).Release() // warm up
	allocs := testing.AllocsPerRun(200, func() {
		f := bpool.NewFrame(512)
		f.B = append(f.B, "data"...)
		f.Retain(3)
		for i := 0; i < 4; i++ {
			f.Release()
		}
	})
	if allocs != 0 {
		t.Fatalf("NewFrame/Release allocates %.1f times per run, want 0", allocs)
	}
}
