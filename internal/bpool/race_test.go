//go:build race

package bpool_test

// raceEnabled is true when the race detector is on. sync.Pool drops a random
// share of Puts under -race, so allocation counts are only asserted without it.
const raceEnabled = true
