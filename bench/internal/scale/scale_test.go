package scale

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	// The client processes re-execute the running binary: this test binary.
	if os.Getenv(fleet.ChildEnv) == "1" {
		os.Exit(fleet.ChildMain(os.Stdin, os.Stdout))
	}
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// buildWspushd builds cmd/wspushd into a temp dir and returns its path.
func buildWspushd(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "wspushd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wspushd")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wspushd: %v\n%s", err, out)
	}
	return bin
}

// fakeSysctls writes kernel settings that suffice for a small run into a
// temp dir standing in for /proc/sys.
func fakeSysctls(t *testing.T, values map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	s := newSysctls(dir, false, nil)
	for name, v := range values {
		p := s.path(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var enough = map[string]string{
	sysSomaxconn: "4096", sysSynBacklog: "4096", sysPortRange: "32768\t60999", sysTCPMem: "287898 383865 575796",
}

// TestScaleRun runs the whole thing for real at a tiny size: Redis, two
// wspushd nodes on one port, 400 clients in two processes from four
// source addresses, a short hold, three broadcasts and 100 group
// publishes, every delivery checked.
func TestScaleRun(t *testing.T) {
	redis := redistest.RequireCommands(t, "redis-server")[0]
	no := false
	var out, errOut testutil.SyncBuffer
	jsonPath := filepath.Join(t.TempDir(), "scale.json")
	cfg := Config{
		Conns: 400, Rate: 2000, DialConcurrency: 16, PingInterval: 500 * time.Millisecond,
		Broadcasts: 3, BroadcastEvery: 200 * time.Millisecond, Groups: 100, GroupPublishes: 100, Size: 64,
		Wspushd: buildWspushd(t), Redis: redis, MaxConns: 1000, PerNode: 400, PerProc: 200, PerAddr: 100,
		SourceBase: "127.0.1.1", ConnectTimeout: time.Minute, Drain: 20 * time.Second, Settle: 5 * time.Second,
		Timeout: 2 * time.Minute, JSON: jsonPath, LogDir: t.TempDir(), Out: &out, Err: &errOut,
		SysctlDir: fakeSysctls(t, enough), Root: &no,
	}
	res, err := Run(context.Background(), cfg)
	t.Log(errOut.String())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass {
		t.Fatalf("run failed: %v", res.Problems)
	}
	if len(res.Nodes) != 2 || res.Clients.Procs != 2 || res.Clients.AddrsPerProc != 2 {
		t.Errorf("nodes %d, client processes %d × %d addresses, want 2, 2 × 2", len(res.Nodes), res.Clients.Procs, res.Clients.AddrsPerProc)
	}
	// Each client gets the 3 broadcasts and its group's 1 message.
	if want := int64(400 * (3 + 1)); res.Expected != want {
		t.Errorf("expected deliveries %d, want %d", res.Expected, want)
	}
	if res.Delivery.Count != res.Expected || res.DeliveriesPerSec <= 0 {
		t.Errorf("latencies of %d deliveries, %.0f deliveries/s", res.Delivery.Count, res.DeliveriesPerSec)
	}
	if res.After.Total.Conns != 400 || res.Broadcast.Complete != 3 {
		t.Errorf("connections on the nodes %d (want 400), complete broadcasts %d (want 3)", res.After.Total.Conns, res.Broadcast.Complete)
	}
	// The hold (three 500 ms ping intervals) pinged every connection,
	// and the all-in memory counts the nodes' whole footprint.
	if res.Hold.PingsPerSec <= 0 || res.Hold.PongsPerSec <= 0 || res.Hold.NodeUsPerPing <= 0 || res.Hold.BusyCores <= 0 {
		t.Errorf("hold load %+v: want pings, pongs and CPU", res.Hold)
	}
	if c := res.Cost; c.UserPSSAllInPerConn <= 0 || c.UserPSSAllInPerConn > c.UserRSSAllInPerConn || c.UserRSSAllInPerConn <= c.UserRSSPerConn {
		t.Errorf("all in per connection: %.0f B PSS, %.0f B RSS, growth %.0f B: want 0 < PSS <= RSS and RSS above the growth",
			c.UserPSSAllInPerConn, c.UserRSSAllInPerConn, c.UserRSSPerConn)
	}
	if res.Ended.IdleCloses != 0 || res.Ended.ReadTimeoutCloses != 0 || res.ClosedDuringConnect != 0 {
		t.Errorf("closed by the nodes on a timeout: %d idle, %d read; %d during the connect phase",
			res.Ended.IdleCloses, res.Ended.ReadTimeoutCloses, res.ClosedDuringConnect)
	}
	if res.Ended.Conns != 0 {
		t.Errorf("the nodes still count %d connections after the clients closed", res.Ended.Conns)
	}
	for _, n := range res.Nodes {
		if !strings.HasPrefix(n.Stopped, "exit 0") {
			t.Errorf("%s stopped: %s", n.Name, n.Stopped)
		}
	}
	line := strings.TrimSpace(out.String())
	if !strings.HasPrefix(line, "scale conns=400 nodes=2 connected=400 missing=0 dup=0 disorder=0 user_rss_per_conn_b=") ||
		!strings.HasSuffix(line, " result=PASS") {
		t.Errorf("summary line: %s", line)
	}
	var back Result
	if b, err := os.ReadFile(jsonPath); err != nil || json.Unmarshal(b, &back) != nil || back.Connected != 400 {
		t.Errorf("--json: %v, connected %d", err, back.Connected)
	}
}
