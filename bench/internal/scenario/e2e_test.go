package scenario

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/server"
	"github.com/wspush/wspush/wsconn"
)

func TestMain(m *testing.M) {
	// --procs re-executes the running binary: here, this test binary.
	if os.Getenv(fleet.ChildEnv) == "1" {
		os.Exit(fleet.ChildMain(os.Stdin, os.Stdout))
	}
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// startServer runs the real server in-process on fresh loopback ports.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	return startServerWith(t, server.Config{})
}

// startServerWith is startServer with cfg (its listeners are overridden).
func startServerWith(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Listen, cfg.APIListen = "127.0.0.1:0", "127.0.0.1:0"
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// common returns settings for a small run against s.
func common(t *testing.T, s *server.Server, conns, procs int) Common {
	var c Common
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.Register(fs, conns)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	c.WS, c.API, c.Procs = s.WSAddr().String(), s.APIAddr().String(), procs
	c.Out = &tWriter{t: t}
	c.ServerPID = serverstat.PIDs{os.Getpid()} // the server runs in this process
	c.Timeout = 2 * time.Minute
	c.DialTimeout = 5 * time.Second
	return c
}

// tWriter logs whole lines to the test log.
type tWriter struct {
	t   *testing.T
	buf []byte
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func assertExact(t *testing.T, cfg BroadcastConfig, err error, got *report.Checks) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	want := int64(cfg.Conns * cfg.Messages / cfg.Topics)
	if got.Missing != 0 || got.Duplicates != 0 || got.OutOfOrder != 0 || got.Unknown != 0 {
		t.Errorf("missing %d dup %d ooo %d unknown %d", got.Missing, got.Duplicates, got.OutOfOrder, got.Unknown)
	}
	if got.Received != want || got.Expected != want || !got.Pass {
		t.Errorf("received %d expected %d pass %v (%s), want %d", got.Received, got.Expected, got.Pass, got.Verdict, want)
	}
}

// TestBroadcastInProcess is the small end-to-end run: 50 subscribers, 20
// publishes, clients in this process.
func TestBroadcastInProcess(t *testing.T) {
	s := startServer(t)
	cfg := BroadcastConfig{Common: common(t, s, 50, 1), Messages: 20, Size: 64, Publishers: 1}
	dir := t.TempDir()
	cfg.JSON, cfg.HTML = dir+"/r.json", dir+"/r.html"
	rep, err := Broadcast(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertExact(t, cfg, err, rep.Checks)
	if rep.Clients.Up != 50 || rep.Clients.Failed != 0 || rep.Latency == nil || rep.Latency.Count != 1000 {
		t.Errorf("clients %+v latency %+v", rep.Clients, rep.Latency)
	}
	if l := rep.LastSubscriber; l == nil || l.Messages != 20 || l.Complete != 20 {
		t.Errorf("last subscriber %+v", l)
	}
	if rep.Publish.Sent != 20 || rep.Publish.Recipients != 1000 {
		t.Errorf("publish %+v", rep.Publish)
	}
	for _, f := range []string{cfg.JSON, cfg.HTML} {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	page, _ := os.ReadFile(cfg.HTML)
	if strings.Contains(string(page), "<script src=") || !strings.Contains(string(page), "echarts") {
		t.Error("the HTML page is not self-contained")
	}
}

// TestBroadcastProcs spreads subscribers over two child processes (this
// test binary re-executed) and three topics.
func TestBroadcastProcs(t *testing.T) {
	s := startServer(t)
	cfg := BroadcastConfig{Common: common(t, s, 60, 2), Messages: 30, Size: 32, Publishers: 2}
	cfg.Topics = 3
	rep, err := Broadcast(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertExact(t, cfg, err, rep.Checks)
	if rep.Clients.Procs != 2 || rep.Clients.Up != 60 {
		t.Errorf("clients %+v", rep.Clients)
	}
}

func TestConnectAndChurn(t *testing.T) {
	s := startServer(t)
	cc := ConnectConfig{Common: common(t, s, 40, 1), Baseline: true}
	rep, err := Connect(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clients.Up != 40 || rep.Handshake == nil || rep.Handshake.Count != 40 {
		t.Errorf("clients %+v handshake %+v", rep.Clients, rep.Handshake)
	}
	if v := rep.Server.PerConn["wspush_connections"]; v != 1 {
		t.Errorf("per-connection wspush_connections %v, want 1 (%+v)", v, rep.Server.PerConn)
	}

	ch := ChurnConfig{Common: common(t, s, 0, 1), Rate: 500, Duration: 200 * time.Millisecond, Concurrency: 8, SettleTimeout: 20 * time.Second}
	ch.Settle = time.Millisecond
	rep, err = Churn(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Churn.Cycles == 0 || rep.Churn.Failed != 0 || !rep.Churn.Settled {
		t.Errorf("churn %+v failures %v", rep.Churn, rep.Clients.Failures)
	}
}

func TestSlowAndThroughput(t *testing.T) {
	s := startServer(t)
	sc := SlowConfig{FlowConfig: FlowConfig{Common: common(t, s, 20, 1), Duration: 200 * time.Millisecond, Rate: 200, Publishers: 1, Size: 256}, Slow: 3}
	rep, err := Slow(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Checks; !c.Pass || c.Missing != 0 || c.Received == 0 {
		t.Errorf("slow checks %+v", c)
	}
	if rep.Clients.Up != 23 || rep.Clients.Slow != 3 {
		t.Errorf("clients %+v", rep.Clients)
	}

	// Flat out, the in-process clients (under -race) can fall more than
	// the default 64 frames behind, and then drop-oldest rightly drops. A
	// queue deeper than the run can publish makes any gap a bench bug.
	deep := startServerWith(t, server.Config{Conn: wsconn.Config{SendQueue: 1 << 16}})
	tc := ThroughputConfig{FlowConfig{Common: common(t, deep, 20, 1), Duration: 200 * time.Millisecond, Publishers: 2, Size: 64}}
	rep, err = Throughput(context.Background(), tc)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Checks; !c.Pass || c.Missing != 0 || c.Duplicates != 0 || c.OutOfOrder != 0 || c.ServerDropped != 0 {
		t.Errorf("throughput checks %+v", c)
	}
	if th := rep.Throughput; th.Deliveries == 0 || th.DeliveriesPerSec <= 0 || th.ServerCPUSeconds < 0 {
		t.Errorf("throughput %+v", th)
	}
}

// TestChurnServerGC forces a GC in the server before each snapshot: quietly
// with --pprof, with a note without it.
func TestChurnServerGC(t *testing.T) {
	for _, pprof := range []bool{true, false} {
		s := startServerWith(t, server.Config{Pprof: pprof})
		ch := ChurnConfig{Common: common(t, s, 0, 1), Rate: 200, Duration: 100 * time.Millisecond, Concurrency: 4, SettleTimeout: 20 * time.Second, ServerGC: true}
		ch.Settle = time.Millisecond
		rep, err := Churn(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		noted := strings.Contains(strings.Join(rep.Notes, "\n"), "no GC before the before snapshot")
		if noted == pprof {
			t.Errorf("pprof %v: notes %q", pprof, rep.Notes)
		}
		if rep.Churn.Cycles == 0 {
			t.Errorf("pprof %v: churn %+v", pprof, rep.Churn)
		}
	}
}
