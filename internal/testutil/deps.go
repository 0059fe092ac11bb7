package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// MissingDependency ends a test that cannot run without what (a command
// or module the repo's scripts/deps.sh installs): it fails the test when
// CI=true, where a missing dependency is a failure, and skips it
// elsewhere. hint says how to get it.
func MissingDependency(t testing.TB, what, hint string) {
	t.Helper()
	msg := what + " missing: " + hint
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing dependency is a failure)")
	} else {
		t.Skip(msg)
	}
}

// RequireCommand returns the path of the command name, or ends the test
// through MissingDependency with hint.
func RequireCommand(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		MissingDependency(t, name+" (not on PATH)", hint)
	}
	return p
}
