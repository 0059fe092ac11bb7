//go:build !race

// The allocation tests of this package. sync.Pool drops a random share of
// Puts under the race detector, so a pooled path's allocation count means
// nothing there: these tests are built only without -race, where make
// test-allocs runs them (in CI too), rather than skipping under it.

package protocol_test

import (
	"testing"

	"github.com/wspush/wspush/protocol"
)

// TestNewDeliveryFrameAllocs: a delivery frame comes from the pools and
// goes back to them (TestEncodersDoNotAllocate covers the encoders).
func TestNewDeliveryFrameAllocs(t *testing.T) {
	data := []byte(`{"price":101.25,"sym":"ABC"}`)
	protocol.NewDeliveryFrame("quotes.ABC", 1, data).Release() // warm up
	allocs := testing.AllocsPerRun(100, func() {
		protocol.NewDeliveryFrame("quotes.ABC", 2, data).Release()
	})
	if allocs != 0 {
		t.Fatalf("NewDeliveryFrame+Release allocates %.1f times per call, want 0", allocs)
	}
}
