//go:build race

package wsconn

// raceEnabled is true when the race detector is on. sync.Pool (behind
// NewDeliveryFrame) drops a random share of Puts under -race, so allocation
// counts of pooled paths are only asserted without it.
const raceEnabled = true
