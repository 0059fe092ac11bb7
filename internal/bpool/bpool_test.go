package bpool_test

import (
	"bytes"
	"fmt"
	"math/bits"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

func TestGet(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		wantCap int // exact capacity expected
	}{
		{name: "zero", n: 0, wantCap: 64},
		{name: "negative", n: -5, wantCap: 64},
		{name: "one", n: 1, wantCap: 64},
		{name: "min_class", n: 64, wantCap: 64},
		{name: "min_class_plus_one", n: 65, wantCap: 128},
		{name: "hundred", n: 100, wantCap: 128},
		{name: "exact_1k", n: 1024, wantCap: 1024},
		{name: "1k_plus_one", n: 1025, wantCap: 2048},
		{name: "max_pooled_minus_one", n: bpool.MaxPooled - 1, wantCap: bpool.MaxPooled},
		{name: "max_pooled", n: bpool.MaxPooled, wantCap: bpool.MaxPooled},
		{name: "over_max_pooled", n: bpool.MaxPooled + 1, wantCap: bpool.MaxPooled + 1},
		{name: "far_over_max_pooled", n: 3 * bpool.MaxPooled, wantCap: 3 * bpool.MaxPooled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bp := bpool.Get(tt.n)
			if bp == nil {
				t.Fatal("Get returned nil")
			}
			if len(*bp) != 0 {
				t.Errorf("len = %d, want 0", len(*bp))
			}
			if cap(*bp) < tt.n {
				t.Errorf("cap = %d, want >= %d", cap(*bp), tt.n)
			}
			if cap(*bp) != tt.wantCap {
				t.Errorf("cap = %d, want %d", cap(*bp), tt.wantCap)
			}
			if tt.n <= bpool.MaxPooled && !isPow2(cap(*bp)) {
				t.Errorf("pooled cap %d is not a power of two", cap(*bp))
			}
			bpool.Put(bp)
		})
	}
}

// TestGetAfterPutIsEmpty checks that a recycled buffer comes back with len 0
// whatever its length was when it was put back.
func TestGetAfterPutIsEmpty(t *testing.T) {
	for i := 0; i < 100; i++ {
		bp := bpool.Get(200)
		*bp = append(*bp, bytes.Repeat([]byte{'x'}, 150)...)
		bpool.Put(bp)
		got := bpool.Get(200)
		if len(*got) != 0 || cap(*got) != 256 {
			t.Fatalf("iteration %d: Get(200) = len %d cap %d, want len 0 cap 256", i, len(*got), cap(*got))
		}
		bpool.Put(got)
	}
}

// TestPutDropsForeignCapacities checks that buffers whose capacity is not a
// pooled size class (odd sizes, or above MaxPooled) never come back out of Get.
func TestPutDropsForeignCapacities(t *testing.T) {
	tests := []struct {
		name string
		cap  int
		// sizes asked of Get afterwards; none may return the dropped buffer
		probe []int
	}{
		{name: "odd_100", cap: 100, probe: []int{64, 65, 100, 128}},
		{name: "odd_65", cap: 65, probe: []int{1, 64, 65, 128}},
		{name: "odd_1000", cap: 1000, probe: []int{512, 1000, 1024}},
		{name: "below_min_class", cap: 32, probe: []int{0, 1, 32, 64}},
		{name: "over_max_pooled_pow2", cap: 2 * bpool.MaxPooled, probe: []int{bpool.MaxPooled, 2 * bpool.MaxPooled}},
		{name: "over_max_pooled_odd", cap: bpool.MaxPooled + 1, probe: []int{bpool.MaxPooled, bpool.MaxPooled + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, 0, tt.cap)
			foreign := &b
			bpool.Put(foreign)
			var got []*[]byte
			for _, n := range tt.probe {
				// Several Gets per size: a pooled item would come out of
				// the current P's private slot or shared list first.
				for i := 0; i < 4; i++ {
					bp := bpool.Get(n)
					got = append(got, bp)
					if bp == foreign {
						t.Fatalf("Get(%d) returned the dropped buffer of cap %d", n, tt.cap)
					}
					if n <= bpool.MaxPooled && !isPow2(cap(*bp)) {
						t.Fatalf("Get(%d) returned cap %d, not a size class", n, cap(*bp))
					}
				}
			}
			for _, bp := range got {
				bpool.Put(bp)
			}
		})
	}
}

func TestPutNil(t *testing.T) {
	bpool.Put(nil) // must not panic
}

func TestGrow(t *testing.T) {
	tests := []struct {
		name     string
		startCap int // 0 means a nil *[]byte
		fill     int
		extra    int
		wantSame bool // the same buffer is returned (no move)
		wantCap  int
	}{
		{name: "nil_buffer", startCap: 0, extra: 10, wantCap: 64},
		{name: "nil_buffer_big", startCap: 0, extra: 5000, wantCap: 8192},
		{name: "fits", startCap: 64, fill: 10, extra: 54, wantSame: true, wantCap: 64},
		{name: "fits_zero_extra", startCap: 128, fill: 128, extra: 0, wantSame: true, wantCap: 128},
		{name: "one_over", startCap: 64, fill: 10, extra: 55, wantCap: 128},
		{name: "full_doubles", startCap: 256, fill: 256, extra: 1, wantCap: 512},
		{name: "jump_several_classes", startCap: 64, fill: 64, extra: 4000, wantCap: 4096},
		{name: "jump_to_next_class_boundary", startCap: 64, fill: 64, extra: 4033, wantCap: 8192},
		{name: "past_max_pooled", startCap: bpool.MaxPooled, fill: 100, extra: bpool.MaxPooled, wantCap: bpool.MaxPooled + 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bp *[]byte
			var want []byte
			if tt.startCap > 0 {
				bp = bpool.Get(tt.startCap)
				for i := 0; i < tt.fill; i++ {
					*bp = append(*bp, byte(i*7))
				}
				want = bytes.Clone(*bp)
			}
			got := bpool.Grow(bp, tt.extra)
			if got == nil {
				t.Fatal("Grow returned nil")
			}
			if tt.wantSame && got != bp {
				t.Error("Grow moved a buffer that had room")
			}
			if !tt.wantSame && got == bp {
				t.Error("Grow kept a buffer that had no room")
			}
			if !bytes.Equal(*got, want) {
				t.Errorf("contents after Grow = %v, want %v", *got, want)
			}
			if free := cap(*got) - len(*got); free < tt.extra {
				t.Errorf("free space = %d, want >= %d", free, tt.extra)
			}
			if cap(*got) != tt.wantCap {
				t.Errorf("cap = %d, want %d", cap(*got), tt.wantCap)
			}
			bpool.Put(got)
		})
	}
}

func TestFrameRefcount(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		retain int32
	}{
		{name: "creator_only", size: 10, retain: 0},
		{name: "one_queue", size: 100, retain: 1},
		{name: "many_queues", size: 1000, retain: 100},
		{name: "unpooled_size", size: bpool.MaxPooled + 1, retain: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bpool.NewFrame(tt.size)
			if len(f.B) != 0 || cap(f.B) < tt.size {
				t.Fatalf("NewFrame(%d).B: len %d cap %d", tt.size, len(f.B), cap(f.B))
			}
			f.B = append(f.B, "payload"...)
			f.Retain(tt.retain)
			for i := int32(0); i < tt.retain; i++ {
				f.Release()
				if string(f.B) != "payload" {
					t.Fatalf("after %d of %d releases the frame was recycled (B=%q)", i+1, tt.retain+1, f.B)
				}
			}
			f.Release()
			if f.B != nil {
				t.Fatalf("after the last release B = %q, want nil (frame returned to the pool)", f.B)
			}
		})
	}
}

func TestFrameRetainInSteps(t *testing.T) {
	f := bpool.NewFrame(64)
	f.B = append(f.B, 'x')
	f.Retain(2)
	f.Retain(3) // 6 references in all
	for i := 0; i < 5; i++ {
		f.Release()
		if f.B == nil {
			t.Fatalf("recycled after %d releases, want 6", i+1)
		}
	}
	f.Release()
	if f.B != nil {
		t.Fatal("not recycled after 6 releases")
	}
}

func TestFrameConcurrentRelease(t *testing.T) {
	const holders = 64
	for round := 0; round < 20; round++ {
		f := bpool.NewFrame(256)
		f.B = append(f.B, "shared"...)
		f.Retain(holders)
		var wg sync.WaitGroup
		bad := make(chan string, holders)
		for i := 0; i < holders; i++ {
			wg.Go(func() {
				if string(f.B) != "shared" {
					bad <- string(f.B)
				}
				f.Release()
			})
		}
		wg.Wait()
		close(bad)
		for b := range bad {
			t.Fatalf("round %d: a holder saw B=%q before its own release", round, b)
		}
		if f.B == nil {
			t.Fatalf("round %d: recycled while the creator still holds it", round)
		}
		f.Release()
		if f.B != nil {
			t.Fatalf("round %d: not recycled after the last release", round)
		}
	}
}

func TestStaticFrame(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		retain  int32
		release int
	}{
		{name: "release_only", b: []byte("ping"), release: 5},
		{name: "retain_then_release", b: []byte{0x89, 0x00}, retain: 10, release: 11},
		{name: "over_release", b: []byte("close"), retain: 1, release: 100},
		{name: "empty", b: []byte{}, release: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := bytes.Clone(tt.b)
			f := bpool.StaticFrame(tt.b)
			f.Retain(tt.retain)
			for i := 0; i < tt.release; i++ {
				f.Release()
			}
			if f.B == nil || !bytes.Equal(f.B, want) {
				t.Fatalf("static frame B = %q after releases, want %q", f.B, want)
			}
			if len(tt.b) > 0 && &f.B[0] != &tt.b[0] {
				t.Fatal("static frame does not wrap the given slice")
			}
		})
	}
}

func BenchmarkGetPut(b *testing.B) {
	for _, n := range []int{64, 1000, 64 << 10, bpool.MaxPooled} {
		b.Run(fmt.Sprintf("size=%d/class=%d", n, 1<<bits.Len(uint(n-1))), func(b *testing.B) {
			bpool.Put(bpool.Get(n)) // warm the class up
			b.ReportAllocs()
			for b.Loop() {
				bp := bpool.Get(n)
				*bp = append(*bp, 'x')
				bpool.Put(bp)
			}
		})
	}
}

func BenchmarkFrame(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		f := bpool.NewFrame(256)
		f.B = append(f.B, "data"...)
		f.Retain(2)
		f.Release()
		f.Release()
		f.Release()
	}
}

// TestFrameProbeEndsWithLastRelease: a sampled frame's probe ends (its
// fan-out is recorded) at the last release, not before, and a recycled
// frame carries no probe.
func TestFrameProbeEndsWithLastRelease(t *testing.T) {
	rec := latency.NewRecorder(time.Hour)
	f := bpool.NewFrame(16)
	f.Probe = rec.NewProbe(rec.Sample())
	f.Retain(2)
	for i := 0; i < 3; i++ {
		f.Probe.Written(latency.Now())
		if got := rec.Fanout.Snapshot().Count; got != 0 {
			t.Fatalf("fan-out recorded with %d references left", 3-i)
		}
		f.Release()
	}
	if got := rec.Fanout.Snapshot().Count; got != 1 {
		t.Fatalf("fan-out observations = %d after the last release, want 1", got)
	}
	if g := bpool.NewFrame(16); g.Probe != nil {
		t.Fatal("a new frame carries a probe")
	}
}

func TestFrameAlt(t *testing.T) {
	f := bpool.NewFrame(16)
	if b, ok := f.Alt(); ok || b != nil {
		t.Fatalf("a new frame's Alt = %q, %v", b, ok)
	}
	alt := bpool.Get(32)
	*alt = append(*alt, "zipped"...)
	if !f.SetAlt(alt) {
		t.Fatal("first SetAlt = false")
	}
	other := bpool.Get(32)
	if f.SetAlt(other) || f.SetAlt(bpool.NoAlt) {
		t.Fatal("a second SetAlt replaced the first")
	}
	if b, ok := f.Alt(); !ok || string(b) != "zipped" {
		t.Fatalf("Alt = %q, %v", b, ok)
	}
	f.Release()
	// The released frame's alt went back: a frame from the pool has none.
	g := bpool.NewFrame(16)
	defer g.Release()
	if _, ok := g.Alt(); ok {
		t.Fatal("a recycled frame kept its Alt")
	}
	h := bpool.NewFrame(16)
	if !h.SetAlt(bpool.NoAlt) {
		t.Fatal("SetAlt(NoAlt) = false")
	}
	if b, ok := h.Alt(); !ok || len(b) != 0 {
		t.Fatalf("after NoAlt: %q, %v", b, ok)
	}
	h.Release() // must not put NoAlt into a pool
	if cap(*bpool.NoAlt) != 0 {
		t.Fatal("NoAlt was pooled")
	}
}

// TestFramePolicyResetOnRelease: the queue policy a creator set on a frame
// survives every release but the last, which clears it, so a recycled frame
// is a plain delivery again.
func TestFramePolicyResetOnRelease(t *testing.T) {
	f := bpool.NewFrame(16)
	f.Slow, f.Conflate = slowpolicy.Conflate, 42
	f.Retain(1)
	f.Release()
	if f.Slow != slowpolicy.Conflate || f.Conflate != 42 {
		t.Fatalf("policy %v, key %d with a reference left; want conflate, 42", f.Slow, f.Conflate)
	}
	f.Release()
	if f.Slow != slowpolicy.Default || f.Conflate != 0 {
		t.Fatalf("policy %v, key %d after the last release; want default, 0", f.Slow, f.Conflate)
	}
}
