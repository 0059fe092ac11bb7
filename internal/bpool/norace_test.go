//go:build !race

package bpool_test

// raceEnabled is true when the race detector is on.
const raceEnabled = false
