package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/conformance"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(summarizing{m}, testutil.LeakOptions()...)
}

// summarizing runs the tests, then prints each suite run's summary (its
// non-passing cases, totals and known failures), so that the outcome is
// at the end of go test -v output rather than above hundreds of subtest
// lines. go test shows it only with -v or on failure.
type summarizing struct{ m *testing.M }

func (s summarizing) Run() int {
	code := s.m.Run()
	summaries.Lock()
	defer summaries.Unlock()
	for _, sum := range summaries.s {
		fmt.Print(sum)
	}
	return code
}

// summaries collects the summaries of the suite runs.
var summaries struct {
	sync.Mutex
	s []string
}

// TestConformance runs every case against the real wspushd binary started
// with --max-message 4096, one subtest per case, and logs the report.
func TestConformance(t *testing.T) {
	runSuite(t, 4096, func(conformance.Case) bool { return true })
}

// TestConformanceLargeMessages runs the framing (1) and limits (9) sections
// again with wspushd's default --max-message of 65536, so that the 16-bit
// and 64-bit length messages are delivered instead of refused.
func TestConformanceLargeMessages(t *testing.T) {
	runSuite(t, 65536, sections("1.", "9."))
}

// TestConformanceSmallMaxMessage runs the sections that do not depend on
// command sizes with --max-message 100, below the 125 bytes a control frame
// may carry: pings and closes of up to 125 bytes must still be answered.
func TestConformanceSmallMaxMessage(t *testing.T) {
	runSuite(t, 100, sections("1.", "2.", "3.", "4.", "7.3.", "9."))
}

// TestConformanceCompression runs the permessage-deflate sections (12 and
// 13, RFC 7692) against wspushd with --compression and --client-publish
// (the cases echo through a client publish).
func TestConformanceCompression(t *testing.T) {
	runSuiteWith(t, conformance.Config{MaxMessage: 65536, Compression: true}, sections("12.", "13."),
		"--compression", "--client-publish")
}

// sections keeps the cases whose id starts with one of prefixes.
func sections(prefixes ...string) func(conformance.Case) bool {
	return func(c conformance.Case) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(c.ID, p) {
				return true
			}
		}
		return false
	}
}

// runSuite builds and starts wspushd with maxMessage, runs the cases keep
// accepts, and stops the server with SIGTERM, requiring exit code 0.
func runSuite(t *testing.T, maxMessage int, keep func(conformance.Case) bool) {
	runSuiteWith(t, conformance.Config{MaxMessage: maxMessage}, keep)
}

// runSuiteWith is runSuite for the server cfg describes, started with
// flags (besides --max-message).
func runSuiteWith(t *testing.T, cfg conformance.Config, keep func(conformance.Case) bool, flags ...string) {
	srv := startWspushd(t, buildWspushd(t), cfg.MaxMessage, flags...)
	cfg.CaseTimeout = 5 * time.Second
	var cases []conformance.Case
	for _, c := range conformance.Cases(cfg) {
		if keep(c) {
			cases = append(cases, c)
		}
	}
	runCases(t, srv.ws, cfg, cases)
	srv.stop(t)
}

// TestCaseTable checks the table itself: unique well-formed ids, a section
// and a description for every case, and every known failure explained.
func TestCaseTable(t *testing.T) {
	idRE := regexp.MustCompile(`^[1-9][0-9]?(\.[0-9]+){1,2}$`)
	for _, cfg := range []conformance.Config{{MaxMessage: 1}, {MaxMessage: 100}, {MaxMessage: 4096}, {MaxMessage: 65536},
		{MaxMessage: 1 << 20}, {MaxMessage: 65536, Compression: true}} {
		mm := cfg.MaxMessage
		seen := map[string]bool{}
		for _, c := range conformance.Cases(cfg) {
			switch {
			case !idRE.MatchString(c.ID):
				t.Errorf("max %d: bad id %q", mm, c.ID)
			case seen[c.ID]:
				t.Errorf("max %d: duplicate id %q", mm, c.ID)
			case !strings.HasPrefix(c.Section, "§5") && !strings.HasPrefix(c.Section, "§7") &&
				!strings.HasPrefix(c.Section, "§8") && !strings.HasPrefix(c.Section, "§10") &&
				!strings.HasPrefix(c.Section, "RFC 7692 §"):
				t.Errorf("%s: section %q", c.ID, c.Section)
			case c.Desc == "" || strings.Contains(c.Desc, "\n"):
				t.Errorf("%s: description %q", c.ID, c.Desc)
			case len(c.Steps) == 0:
				t.Errorf("%s: no steps", c.ID)
			}
			seen[c.ID] = true
		}
	}
}

// runCases runs cases as subtests named "<id> <description>" and logs the
// report. A known failure is logged, not failed.
func runCases(t *testing.T, addr string, cfg conformance.Config, cases []conformance.Case) {
	t.Helper()
	start := time.Now()
	results := make([]conformance.Result, 0, len(cases))
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			r := conformance.RunCase(t.Context(), addr, cfg, c)
			results = append(results, r)
			switch r.Status {
			case conformance.Fail:
				t.Error(r.Line())
			case conformance.KnownFail:
				t.Logf("%s\nknown server failure: %s", r.Line(), c.Known)
			case conformance.KnownPass:
				t.Log(r.Line())
			}
		})
	}
	var b strings.Builder
	tot := conformance.WriteReport(&b, results)
	title := fmt.Sprintf("%s: conformance report (--max-message %d, %d cases, %v)", t.Name(), cfg.MaxMessage, len(results), time.Since(start).Round(time.Millisecond))
	t.Logf("%s:\n%s", title, b.String())
	var sum strings.Builder
	fmt.Fprintf(&sum, "== %s, cases other than PASS:\n", title)
	conformance.WriteSummary(&sum, results)
	summaries.Lock()
	summaries.s = append(summaries.s, sum.String())
	summaries.Unlock()
	if tot.Failed > 0 {
		t.Errorf("%d cases failed", tot.Failed)
	}
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the module root")
	}
	return filepath.Dir(filepath.Dir(file))
}

// buildWspushd compiles ./cmd/wspushd into the test's temporary directory.
func buildWspushd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wspushd")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wspushd")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/wspushd: %v\n%s", err, out)
	}
	return bin
}

// wspushd is a running server process.
type wspushd struct {
	cmd    *exec.Cmd
	ws     string
	api    string
	log    *startLog
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's result, valid after exited
}

// startLog collects the server's stderr and finds the start-up line.
type startLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan [2]string // the ws and api addresses, once
	done  bool
}

var startRE = regexp.MustCompile(`msg="wspushd started".* ws=(\S+) api=(\S+)\s`)

func (l *startLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.done {
		if m := startRE.FindSubmatch(l.buf.Bytes()); m != nil {
			l.done = true
			l.found <- [2]string{string(m[1]), string(m[2])}
		}
	}
	return len(p), nil
}

func (l *startLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startWspushd starts bin on loopback ports with the given --max-message
// and flags, and waits for its start-up log line. The process is killed at cleanup if
// the test did not stop it.
func startWspushd(t *testing.T, bin string, maxMessage int, flags ...string) *wspushd {
	t.Helper()
	s := &wspushd{log: &startLog{found: make(chan [2]string, 1)}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
		"--max-message", strconv.Itoa(maxMessage), "--log-level", "info"}, flags...)...)
	for _, kv := range os.Environ() { // only the flags configure the server
		if !strings.HasPrefix(kv, "WSPUSH_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start wspushd: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case addrs := <-s.log.found:
		s.ws, s.api = addrs[0], addrs[1]
	case <-s.exited:
		t.Fatalf("wspushd exited at start: %v\n%s", s.err, s.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("no start-up line from wspushd within 20s:\n%s", s.log)
	}
	t.Logf("wspushd --max-message %d: ws=%s api=%s", maxMessage, s.ws, s.api)
	return s
}

// stop sends SIGTERM and requires a clean exit (code 0) within 15s.
func (s *wspushd) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("wspushd did not exit within 15s of SIGTERM:\n%s", s.log)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(s.err, &ee):
		t.Errorf("wspushd exit code %d after SIGTERM, want 0:\n%s", ee.ExitCode(), s.log)
	case s.err != nil:
		t.Errorf("wspushd: %v", s.err)
	}
}
