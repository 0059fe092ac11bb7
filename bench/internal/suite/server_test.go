package suite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseListenLine(t *testing.T) {
	for _, tc := range []struct {
		line, ws, api string
		ok            bool
	}{
		{"LISTEN ws=127.0.0.1:40133 api=127.0.0.1:35721", "127.0.0.1:40133", "127.0.0.1:35721", true},
		{"LISTEN ws=[::1]:80 api=[::1]:81\n", "[::1]:80", "[::1]:81", true},
		{"  LISTEN   ws=127.0.0.1:1   api=127.0.0.1:2 ", "127.0.0.1:1", "127.0.0.1:2", true},
		{"LISTEN api=127.0.0.1:2 ws=127.0.0.1:1", "", "", false},
		{"LISTEN ws=127.0.0.1:0 api=127.0.0.1:2", "", "", false},
		{"LISTEN ws=127.0.0.1 api=127.0.0.1:2", "", "", false},
		{"LISTEN ws=127.0.0.1:1 api=127.0.0.1:2 extra", "", "", false},
		{"listen ws=127.0.0.1:1 api=127.0.0.1:2", "", "", false},
		{"", "", "", false},
	} {
		ws, api, ok := ParseListenLine(tc.line)
		if ws != tc.ws || api != tc.api || ok != tc.ok {
			t.Errorf("%q: got %q %q %v", tc.line, ws, api, ok)
		}
	}
}

func TestParseStartupLine(t *testing.T) {
	real := `time=2026-11-27T09:48:07.358Z level=INFO msg="wspushd started" ws=127.0.0.1:43677 api=127.0.0.1:34319 max_conns=19744 max_conns_reason="open-file limit 20000 minus 256 descriptors of headroom" pollers=1`
	for _, tc := range []struct {
		line, ws, api string
		ok            bool
	}{
		{real, "127.0.0.1:43677", "127.0.0.1:34319", true},
		{`level=INFO msg="wspushd started" ws="[::1]:8080" api="127.0.0.1:8081"`, "[::1]:8080", "127.0.0.1:8081", true},
		{`{"time":"x","level":"INFO","msg":"wspushd started","ws":"127.0.0.1:1","api":"127.0.0.1:2"}`, "127.0.0.1:1", "127.0.0.1:2", true},
		{`level=INFO msg="config" ws=127.0.0.1:1 api=127.0.0.1:2`, "", "", false},
		{`level=INFO msg="wspushd started" ws=127.0.0.1:1`, "", "", false},
		{`level=INFO msg="wspushd started" ws=127.0.0.1:0 api=127.0.0.1:2`, "", "", false},
		{`level=INFO msg="wspushd started" news=127.0.0.1:1 xapi=127.0.0.1:2`, "", "", false},
	} {
		ws, api, ok := ParseStartupLine(tc.line)
		if ws != tc.ws || api != tc.api || ok != tc.ok {
			t.Errorf("%q: got %q %q %v", tc.line, ws, api, ok)
		}
	}
}

func TestParseServerSpec(t *testing.T) {
	s, err := ParseServerSpec("wspush=bin/wspushd --send-queue 128")
	if err != nil || s.Name != "wspush" || s.Path != "bin/wspushd" || s.Kind != KindWspushd || !slices.Equal(s.Args, []string{"--send-queue", "128"}) {
		t.Errorf("%+v %v", s, err)
	}
	s, err = ParseServerSpec("floor=bin/peer-floor")
	if err != nil || s.Kind != KindPeer || len(s.Args) != 0 {
		t.Errorf("%+v %v", s, err)
	}
	for _, bad := range []string{"bin/wspushd", "=bin/x", "a b=bin/x", "x=", "x=  ", "a/b=bin/x"} {
		if _, err := ParseServerSpec(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := startArgs(ServerSpec{Kind: KindWspushd, Args: []string{"--writer", "persistent"}}); !slices.Equal(got, []string{
		"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--log-level", "info", "--pprof", "--writer", "persistent"}) {
		t.Errorf("wspushd args %q", got)
	}
	if got := startArgs(ServerSpec{Kind: KindPeer}); !slices.Equal(got, []string{"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}) {
		t.Errorf("peer args %q", got)
	}
}

// fakeSpec is the test binary playing role.
func fakeSpec(t *testing.T, role, kind string) ServerSpec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, role)
	return ServerSpec{Name: role, Path: exe, Kind: kind}
}

func TestProcessPeerAndWspushd(t *testing.T) {
	for _, tc := range []struct {
		role, kind, ws, api, logged string
	}{
		{"peer", KindPeer, "127.0.0.1:40133", "127.0.0.1:35721", "diagnostics go to stderr"},
		{"wspushd", KindWspushd, "127.0.0.1:41000", "127.0.0.1:41001", `msg="config"`},
	} {
		spec := fakeSpec(t, tc.role, tc.kind)
		logPath := filepath.Join(t.TempDir(), "server.log")
		srv, err := launchProcess(10*time.Second, 10*time.Second)(context.Background(), spec, logPath)
		if err != nil {
			t.Fatal(err)
		}
		ep := srv.Endpoint()
		if ep.WS != tc.ws || ep.API != tc.api || ep.PID <= 0 {
			t.Errorf("%s: endpoint %+v", tc.role, ep)
		}
		if openFDs(ep.PID) <= 0 {
			t.Errorf("%s: no fds for pid %d", tc.role, ep.PID)
		}
		msg, err := srv.Stop()
		if err != nil || msg != "exit 0" {
			t.Errorf("%s: stop %q %v", tc.role, msg, err)
		}
		if msg2, err2 := srv.Stop(); msg2 != msg || err2 != err {
			t.Errorf("second Stop differs: %q %v", msg2, err2)
		}
		log, _ := os.ReadFile(logPath)
		if !strings.Contains(string(log), tc.logged) || !strings.Contains(string(log), tc.api) {
			t.Errorf("%s: log lacks output:\n%s", tc.role, log)
		}
	}
}

func TestProcessFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	spec := fakeSpec(t, "stubborn", KindPeer)
	srv, err := launchProcess(10*time.Second, 200*time.Millisecond)(ctx, spec, filepath.Join(dir, "s.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if msg, err := srv.Stop(); msg != "killed" || err == nil {
		t.Errorf("stubborn: %q %v", msg, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}

	spec = fakeSpec(t, "crash", KindPeer)
	if _, err := launchProcess(10*time.Second, time.Second)(ctx, spec, filepath.Join(dir, "c.log")); err == nil || !strings.Contains(err.Error(), "exited before announcing") {
		t.Errorf("crash: %v", err)
	}

	spec = fakeSpec(t, "silent", KindWspushd)
	if _, err := launchProcess(300*time.Millisecond, time.Second)(ctx, spec, filepath.Join(dir, "q.log")); err == nil || !strings.Contains(err.Error(), "did not announce") {
		t.Errorf("silent: %v", err)
	}

	spec = ServerSpec{Name: "none", Path: filepath.Join(dir, "no-such-binary"), Kind: KindPeer}
	if _, err := launchProcess(time.Second, time.Second)(ctx, spec, filepath.Join(dir, "n.log")); err == nil {
		t.Error("missing binary: no error")
	}
}

func TestQuiesce(t *testing.T) {
	pid := os.Getpid()
	base := openFDs(pid)
	if !quiesce(context.Background(), pid, base, time.Second) {
		t.Error("own fds did not count as quiet")
	}
	if quiesce(context.Background(), 1<<30, 0, time.Second) {
		t.Error("a missing pid counted as quiet")
	}
	// Far below the current count: gives up once the count is stable.
	start := time.Now()
	if quiesce(context.Background(), pid, -100, 10*time.Second) {
		t.Error("quiet below the current count")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %v", d)
	}
}
