//go:build !race

package wsconn

// raceEnabled is true when the race detector is on.
const raceEnabled = false
