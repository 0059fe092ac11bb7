// Package bpool holds size-class pools of byte buffers and the shared,
// reference-counted Frame that carries one encoded message to many writers.
//
// bpool owns buffer lifetimes only: it never reads from or writes to a socket,
// and it never grows a buffer past MaxPooled (larger buffers are allocated and
// dropped, so one huge message cannot pin memory in a pool forever).
package bpool

import (
	"math/bits"
	"sync"
)

const (
	// minShift is log2 of the smallest size class (64 bytes).
	minShift = 6
	// maxShift is log2 of the largest pooled size class (1 MiB).
	maxShift = 20
	// MaxPooled is the capacity above which buffers are not pooled.
	MaxPooled = 1 << maxShift
)

// pools[i] holds *[]byte with cap exactly 1<<(i+minShift).
var pools [maxShift - minShift + 1]sync.Pool

// classOf returns the pool index whose capacity is the smallest power of two
// >= n, or -1 when n exceeds MaxPooled.
func classOf(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	if n > MaxPooled {
		return -1
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a buffer with len 0 and cap >= n. Return it with Put when done;
// a buffer that is never returned is simply garbage collected.
func Get(n int) *[]byte {
	c := classOf(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:0]
		return bp
	}
	b := make([]byte, 0, 1<<(c+minShift))
	return &b
}

// Put returns a buffer obtained from Get (or any buffer whose capacity is a
// pooled size class). Buffers of other capacities are dropped. The caller
// must not touch *bp after Put.
func Put(bp *[]byte) {
	if bp == nil {
		return
	}
	n := cap(*bp)
	c := classOf(n)
	if c < 0 || n != 1<<(c+minShift) {
		return
	}
	*bp = (*bp)[:0]
	pools[c].Put(bp)
}

// Grow returns a buffer holding the contents of *bp with room for at least
// extra more bytes, moving to a bigger class (and returning the old buffer to
// its pool) when needed. bp may be nil.
func Grow(bp *[]byte, extra int) *[]byte {
	if bp == nil {
		return Get(extra)
	}
	need := len(*bp) + extra
	if need <= cap(*bp) {
		return bp
	}
	nb := Get(need)
	*nb = append(*nb, *bp...)
	Put(bp)
	return nb
}
