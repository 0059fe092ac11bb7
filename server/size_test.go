package server

import (
	"testing"
	"unsafe"
)

// TestSessionSize: a session is held per connection; it fits the 48-byte
// size class (BENCHMARKS.md's memory table).
func TestSessionSize(t *testing.T) {
	if got := unsafe.Sizeof(session{}); got > 48 {
		t.Fatalf("session is %d bytes, want at most 48", got)
	}
}
