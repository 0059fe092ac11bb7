package bpool

import (
	"sync"
	"sync/atomic"

	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/internal/slowpolicy"
)

// Frame is one encoded WebSocket frame (or raw HTTP response bytes) shared by
// every connection it is queued on. It is written by its creator, then only
// read; the last Release returns it and its buffer to the pool.
//
// Ownership: the creator holds one reference after NewFrame. Each queue that
// holds the frame holds one more (Retain before handing it over). Whoever
// drops a reference calls Release exactly once.
type Frame struct {
	// B is the frame's bytes. It is immutable once the frame is shared.
	B []byte
	// Probe, when not nil, times a sampled publication: set by the creator
	// before the frame is shared, Written by each writer that writes it,
	// ended by the last Release.
	Probe *latency.Probe

	// The queue policy of a delivery: set by the creator (the hub, from
	// its topic's policy) before the frame is shared, read by every queue
	// it enters, immutable after, zeroed when the frame returns to the
	// pool. The zero values mean a plain delivery under the receiving
	// server's own slow policy.
	//
	// Slow is what a full queue does with this frame (slowpolicy.Default:
	// the server's SlowPolicy).
	Slow slowpolicy.Policy
	// Conflate, when not 0, names the conflated topic run the frame
	// belongs to (unique in the process, never reused): a queue keeps at
	// most one unwritten frame per key, the newest.
	Conflate uint64

	buf    *[]byte      // pooled backing of B; nil for static frames
	refs   atomic.Int32 // live references; static frames ignore it
	static bool         // never returned to a pool (package-level constants)
	// alt is the same message in a second encoding (a permessage-deflate
	// frame), set at most once, by the first sender that needs it (SetAlt),
	// and immutable after; NoAlt when that encoding is not worth sending.
	// A pooled buffer, returned with the frame.
	alt atomic.Pointer[[]byte]
}

// NoAlt is the alternative encoding of a frame that has none worth
// sending: SetAlt(NoAlt) records that it was tried.
var NoAlt = new([]byte)

// Alt returns the frame's second encoding and whether one was set (SetAlt);
// an empty slice with true means it was tried and is not worth sending.
func (f *Frame) Alt() ([]byte, bool) {
	p := f.alt.Load()
	if p == nil {
		return nil, false
	}
	return *p, true
}

// SetAlt records b (a pooled buffer from Get, or NoAlt) as the frame's
// second encoding, owned by the frame from then on, unless one was set
// already: then it returns false and b stays the caller's.
func (f *Frame) SetAlt(b *[]byte) bool {
	return f.alt.CompareAndSwap(nil, b)
}

var framePool = sync.Pool{New: func() any { return new(Frame) }}

// NewFrame returns a frame whose B has len 0 and cap >= n, holding one
// reference owned by the caller.
func NewFrame(n int) *Frame {
	f := framePool.Get().(*Frame)
	f.buf = Get(n)
	f.B = *f.buf
	f.refs.Store(1)
	return f
}

// StaticFrame wraps b in a frame that is never pooled; Retain and Release
// are no-ops on it. Use it for frames that live as long as the process.
func StaticFrame(b []byte) *Frame {
	return &Frame{B: b, static: true}
}

// Retain adds n references, one per queue the frame is about to enter.
func (f *Frame) Retain(n int32) {
	if !f.static {
		f.refs.Add(n)
	}
}

// Release drops one reference; the last one returns the frame to the pool.
func (f *Frame) Release() {
	if f.static {
		return
	}
	switch r := f.refs.Add(-1); {
	case r > 0:
		return
	case r < 0:
		// A double release is a bug in the caller; keep the pool safe by
		// not recycling a frame that may still be referenced.
		return
	}
	if f.Probe != nil {
		f.Probe.Done()
		f.Probe = nil
	}
	f.Slow, f.Conflate = slowpolicy.Default, 0
	if f.buf != nil {
		*f.buf = f.B[:0]
		Put(f.buf)
	}
	if alt := f.alt.Swap(nil); alt != nil && alt != NoAlt {
		Put(alt)
	}
	f.buf, f.B = nil, nil
	framePool.Put(f)
}
