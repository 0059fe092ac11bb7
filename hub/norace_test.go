//go:build !race

package hub_test

// raceEnabled is true when the race detector is on.
const raceEnabled = false
