package suite

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/internal/testutil"
)

// fakeEnv makes the test binary, re-executed, play a server or bench.
const fakeEnv = "WSPUSH_SUITE_FAKE"

func TestMain(m *testing.M) {
	if role := os.Getenv(fakeEnv); role != "" {
		os.Exit(fake(role, os.Args[1:]))
	}
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// fake plays role and returns the exit status. Every role ends within a
// minute whatever happens.
func fake(role string, args []string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	wait := func() int {
		select {
		case <-term:
			return 0
		case <-time.After(time.Minute):
			return 4
		}
	}
	switch role {
	case "peer":
		fmt.Println("LISTEN ws=127.0.0.1:40133 api=127.0.0.1:35721")
		fmt.Fprintln(os.Stderr, "peer: diagnostics go to stderr")
		return wait()
	case "wspushd":
		fmt.Fprintln(os.Stderr, `time=2026-01-01T00:00:00Z level=INFO msg="config" listen=127.0.0.1:0`)
		fmt.Fprintln(os.Stderr, `time=2026-01-01T00:00:00Z level=INFO msg="wspushd started" ws=127.0.0.1:41000 api=127.0.0.1:41001 max_conns=19744`)
		return wait()
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("LISTEN ws=127.0.0.1:1 api=127.0.0.1:2")
		time.Sleep(time.Minute)
		return 4
	case "silent":
		return wait()
	case "crash":
		fmt.Fprintln(os.Stderr, "cannot start")
		return 1
	case "bench":
		// Write a report to the --json file and exit 3 (a check failed).
		for i, a := range args {
			if a == "--json" && i+1 < len(args) {
				r := report.Report{Scenario: args[0], Clients: &report.Clients{Up: 5, ConnectsPerSec: 1234},
					Checks: &report.Checks{Pass: false, Verdict: "2 missing"}}
				b, _ := json.Marshal(r)
				if err := os.WriteFile(args[i+1], b, 0o644); err != nil {
					return 1
				}
			}
		}
		fmt.Println("bench output")
		return 3
	case "bench-broken":
		fmt.Fprintln(os.Stderr, "bench connect: dial: connection refused")
		return 1
	}
	return 5
}
