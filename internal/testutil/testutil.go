// Package testutil holds helpers shared by the test suites: waiting for a
// condition without sleeping blindly, the goleak options every package
// uses, and what a test does when a dependency is missing (deps.go).
package testutil

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// CheckFor polls fn every interval until it returns nil or total elapses,
// then fails the test with fn's last error (as nats-server's checkFor does).
func CheckFor(t testing.TB, total, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(interval)
	}
}

// LeakOptions are the goleak options for a package's TestMain. ants starts
// the goroutines of its package-level default pool at import time; those
// exist before any test runs and are ignored through IgnoreCurrent, so that
// a leak of our own pools still fails.
func LeakOptions() []goleak.Option {
	return []goleak.Option{goleak.IgnoreCurrent()}
}
