package testutil

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, LeakOptions()...) }

// recTB records how a helper ended a test instead of ending it.
type recTB struct {
	testing.TB
	fatal, skip string
}

func (r *recTB) Helper()        {}
func (r *recTB) Fatal(a ...any) { r.fatal = fmt.Sprint(a...) }
func (r *recTB) Skip(a ...any)  { r.skip = fmt.Sprint(a...) }

func TestMissingDependency(t *testing.T) {
	for _, ci := range []string{"true", "", "false"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recTB{TB: t}
			if p := RequireCommand(r, "no-such-command-wspush", "install it"); p != "" {
				t.Fatalf("path %q for a missing command", p)
			}
			got := r.skip
			if ci == "true" {
				got = r.fatal
				if r.skip != "" {
					t.Fatalf("skipped in CI: %q", r.skip)
				}
			} else if r.fatal != "" {
				t.Fatalf("failed outside CI: %q", r.fatal)
			}
			if !strings.Contains(got, "no-such-command-wspush") || !strings.Contains(got, "install it") {
				t.Fatalf("message %q names neither the command nor the hint", got)
			}
		})
	}
	r := &recTB{TB: t}
	if p := RequireCommand(r, "go", "x"); p == "" || r.fatal != "" || r.skip != "" {
		t.Fatalf("go: %q, %q, %q", p, r.fatal, r.skip)
	}
}
