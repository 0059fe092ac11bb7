//go:build !race

package main

import "github.com/lesismal/nbio/nbhttp"

// raceHandoff and raceRelease are no-ops outside -race builds; see
// race_on.go.
func raceHandoff(*nbhttp.Engine) {}

func raceRelease() {}
