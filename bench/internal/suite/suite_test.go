package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

// fakeServer is a Server that runs nowhere; its pid is this process, so
// that the suite's /proc readings work.
type fakeServer struct {
	name    string
	stopped *[]string
	mu      *sync.Mutex
}

func (f fakeServer) Endpoint() Endpoint {
	return Endpoint{WS: "127.0.0.1:1", API: "127.0.0.1:2", PID: os.Getpid()}
}

func (f fakeServer) Stop() (string, error) {
	f.mu.Lock()
	*f.stopped = append(*f.stopped, f.name)
	f.mu.Unlock()
	return "exit 0", nil
}

// fakeValues are per-server figures the fake runner reports, by round.
var fakeValues = map[string]struct{ conns, rss, tput, p99 float64 }{
	"wspush":            {15000, 800, 250000, 300},
	"wspush-persistent": {11000, 3800, 0, 0},
	"gorilla":           {10000, 12000, 80000, 500},
	"floor":             {12000, 1800, 100000, 200},
}

// fakeReport is what the fake bench reports for scenario cmd on server.
func fakeReport(server, id string, round int) *report.Report {
	v := fakeValues[server]
	k := 1 + 0.1*float64(round-2) // rounds differ by ±10%
	sum := stats.Summary{Count: 10, P50: v.p99 / 2 * k, P99: v.p99 * k}
	r := &report.Report{Checks: &report.Checks{Pass: server != "gorilla" || id != ScThroughput, Verdict: "fake"}}
	switch id {
	case ScConnect:
		r.Checks = nil
		r.Clients = &report.Clients{ConnectsPerSec: v.conns * k}
		r.Handshake = &sum
		r.Server = &report.Server{PerConn: map[string]float64{"rss_bytes": v.rss * k, "after_keepalives_rss_bytes": v.rss * k * 0.7}}
	case ScChurn:
		r.Checks = nil
		r.Churn = &report.Churn{CyclesPerSec: 1000}
		r.Server = &report.Server{Snapshots: map[string]serverstat.Snapshot{
			"before": {Proc: &serverstat.Proc{FDs: 14}}, "after": {Proc: &serverstat.Proc{FDs: 14}}}}
	case ScThroughput:
		r.Latency = &sum
		r.Throughput = &report.Throughput{DeliveriesPerSec: v.tput * k, Deliveries: int64(v.tput * k * 20), ServerCPUSeconds: -1}
		r.Cost = &report.DeliveryCost{Deliveries: 10, WireBytesPerDelivery: 180, ServerCPUSeconds: -1}
	default:
		r.Latency = &sum
	}
	return r
}

func testConfig(t *testing.T, rounds int) (*Config, *[]string, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var calls, stopped []string
	dir := t.TempDir()
	cfg := &Config{
		Servers: []ServerSpec{
			{Name: "wspush", Path: "bin/wspushd", Kind: KindWspushd},
			{Name: "gorilla", Path: "bin/peer-gorilla", Kind: KindPeer},
			{Name: "floor", Path: "bin/peer-floor", Kind: KindPeer},
		},
		Rounds: rounds, Exe: "bin/bench", Out: &bytes.Buffer{},
		JSON: filepath.Join(dir, "out", "r.json"), MD: filepath.Join(dir, "out", "r.md"),
		Command:    []string{"bin/bench", "suite", "--rounds", "2"},
		Extra:      map[string][]string{ScThroughput: {"--duration", "1s"}},
		ClientArgs: map[string][]string{"gorilla": {"--compression"}},
		launch: func(_ context.Context, s ServerSpec, _ string) (Server, error) {
			mu.Lock()
			name := s.Name
			if slices.Contains(s.Args, "--history-size") {
				name += "+history"
			}
			calls = append(calls, "start "+name)
			mu.Unlock()
			return fakeServer{name: s.Name, stopped: &stopped, mu: &mu}, nil
		},
		machine:      func() Machine { return Machine{CPUs: 2, Kernel: "6.x", GoVersion: "go1.26"} },
		pause:        time.Millisecond,
		quiesceLimit: time.Second,
	}
	round := map[string]int{}
	cfg.runStep = func(_ context.Context, exe string, args []string, jsonPath, _ string, _ time.Duration) (StepResult, error) {
		// The server is in the json path: .../r<round>-<server>-<id>.json
		base := strings.TrimSuffix(filepath.Base(jsonPath), ".json")
		var server, id string
		for _, sc := range Plan(FullSizes) {
			if p, ok := strings.CutSuffix(base, "-"+sc.ID); ok {
				_, server, _ = strings.Cut(p, "-")
				id = sc.ID
			}
		}
		mu.Lock()
		calls = append(calls, server+" "+args[0])
		round[server+id]++
		r := round[server+id]
		mu.Unlock()
		if exe != "bin/bench" || !slices.Contains(args, "--server-pid") || !slices.Contains(args, jsonPath) {
			t.Errorf("args %q", args)
		}
		if id == ScThroughput && !slices.Contains(args, "1s") {
			t.Errorf("--extra not applied: %q", args)
		}
		if id == ScChurn && slices.Contains(args, "--server-gc") != strings.HasPrefix(server, "wspush") {
			t.Errorf("%s churn args %q", server, args)
		}
		if slices.Contains(args, "--compression") != (server == "gorilla") {
			t.Errorf("%s %s: client args %q", server, id, args)
		}
		if server == "floor" && id == ScSlow && r == 1 {
			return StepResult{Exit: 1}, errors.New("no report")
		}
		return StepResult{Report: fakeReport(server, id, r), CPU: 2}, nil
	}
	return cfg, &calls, &stopped
}

func TestRunInterleavesAndSummarizes(t *testing.T) {
	cfg, calls, stopped := testConfig(t, 3)
	res, err := Run(context.Background(), *cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Round by round, server by server, each round's order rotated by
	// one; the persistent variant with connect only.
	var starts []string
	for _, c := range *calls {
		if s, ok := strings.CutPrefix(c, "start "); ok {
			starts = append(starts, s)
		}
	}
	// recover runs on a wspushd of its own, with history, after the rest.
	one := []string{"wspush", "wspush+history", "wspush-persistent", "gorilla", "floor"}
	two := []string{"wspush-persistent", "gorilla", "floor", "wspush", "wspush+history"}
	three := []string{"gorilla", "floor", "wspush", "wspush+history", "wspush-persistent"}
	if want := slices.Concat(one, two, three); !slices.Equal(starts, want) || len(*stopped) != len(want) {
		t.Errorf("starts %v stops %v, want %v", starts, *stopped, want)
	}
	if i := slices.Index(*calls, "start wspush+history"); (*calls)[i+1] != "wspush recover" || (*calls)[i-1] != "wspush slow" {
		t.Errorf("recover ran %v", (*calls)[i-1:i+2])
	}
	if i := slices.Index(*calls, "start wspush-persistent"); (*calls)[i+1] != "wspush-persistent connect" || (*calls)[i+2] != "start gorilla" {
		t.Errorf("persistent variant ran %v", (*calls)[i:i+3])
	}
	if n := len(res.Runs); n != 3*(7+1+6+6) {
		t.Errorf("%d runs", n)
	}
	if res.Errors() != 1 { // floor's slow in round 1
		t.Errorf("%d errors", res.Errors())
	}
	if s, _ := res.Table.Get("wspush", ScThroughput+".deliveries_per_s"); s == nil || s.Median != 250000 || len(s.Values) != 3 {
		t.Errorf("wspush throughput %+v", s)
	}
	// 2 s of client CPU over 20 s × 250,000 deliveries/s in the middle round.
	if s, ok := res.Table.Get("wspush", ScThroughput+".client_cpu_s_per_million"); !ok || s.Median != 0.4 {
		t.Errorf("client CPU per million %+v", s)
	}
	if c := res.Checks["gorilla"][ScThroughput]; c == nil || c.Passed != 0 || c.Runs != 3 {
		t.Errorf("gorilla checks %+v", c)
	}
	if got := res.peers(); !slices.Equal(got, []string{"gorilla", "floor"}) {
		t.Errorf("peers %v", got)
	}
	status := map[string]string{}
	for _, tr := range res.Targets {
		status[tr.ID] = tr.Status
	}
	for id, want := range map[string]string{"idle-rss-keepalive": "met", "idle-rss-gorilla": "met", "tput-floor": "met", "tput-gorilla": "met",
		"connects-floor": "met", "bcast-floor": "NOT met", "bcast-nbio": "n/a", "churn-fds": "met", "churn-heap": "n/a", "cpu-floor": "n/a"} {
		if status[id] != want {
			t.Errorf("target %s %q, want %q", id, status[id], want)
		}
	}

	var back Results
	b, err := os.ReadFile(cfg.JSON)
	if err != nil || json.Unmarshal(b, &back) != nil || len(back.Runs) != len(res.Runs) || len(back.Ratios) == 0 {
		t.Fatalf("json: %v (%d bytes)", err, len(b))
	}
	md, err := os.ReadFile(cfg.MD)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# bench suite: wspush against gorilla, floor",
		"- command: `bin/bench suite --rounds 2`",
		"| metric | wspush | wspush-persistent | gorilla | floor |",
		"| idle RSS per connection, fresh | 800 B (720 B – 880 B) | 3800 B (3420 B – 4180 B) | 12000 B (10800 B – 13200 B) | 1800 B (1620 B – 1980 B) |",
		"| idle RSS per connection after keepalives | 560 B (504 B – 616 B) | 2660 B (2394 B – 2926 B) | 8400 B (7560 B – 9240 B) | 1260 B (1134 B – 1386 B) |",
		"| idle RSS per connection at 19,000, read after three ping intervals, at most 600 B | 560 B | 600 B | met |",
		"| metric | wspush | wspush / gorilla | wspush / floor |",
		"3.12× better (target ≥3.00: met)",
		"| broadcast to 19,000: per-delivery p99 at most 1.0× the floor's | 300 ms | 200 ms (1.00× floor) | NOT met |",
		"round 1 floor slow: no report",
		"round 2 gorilla throughput: checks failed: fake",
		"bin/bench churn --rate 1000 --duration 30s --procs 2 --timeout 8m --ws $WS --api $API --server-pid $PID --json FILE",
		"#   against wspushd also: --server-gc",
		"bin/bench throughput -n 10000 --duration 20s --publishers 4 -s 128 --procs 2 --timeout 8m --duration 1s",
		"### throughput to 10,000 for 20s + --duration 1s",
		"- gorilla: `bin/peer-gorilla -listen 127.0.0.1:0 -api-listen 127.0.0.1:0`; every scenario against it also with `--compression`",
		"| bytes on the wire per delivery | 180 B | 180 B | 180 B |",
		"- wspush-persistent: `bin/wspushd --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --log-level info --pprof --ping-interval 5s --latency-sample 10ms --writer persistent` (only connect)",
		"bin/bench connect -n 19000 --baseline --keepalive-hold 16s --procs 2 --timeout 8m --ws $WS --api $API --server-pid $PID --json FILE",
		"[2 of 3 rounds]",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("markdown:\n%s", md)
	}
	term := cfg.Out.(*bytes.Buffer).String()
	for _, want := range []string{"[round 1/3 floor] slow: 0.0 s, ERROR: no report", "== suite: medians of 3 rounds", "-- targets (wspush)", "-- problems"} {
		if !strings.Contains(term, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, term)
		}
	}
}

func TestRoundOrder(t *testing.T) {
	tests := []struct {
		name     string
		n, round int
		want     []int
	}{
		{name: "one server", n: 1, round: 3, want: []int{0}},
		{name: "first round as listed", n: 3, round: 1, want: []int{0, 1, 2}},
		{name: "second round rotated once", n: 3, round: 2, want: []int{1, 2, 0}},
		{name: "third round rotated twice", n: 3, round: 3, want: []int{2, 0, 1}},
		{name: "wraps after n rounds", n: 3, round: 4, want: []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := roundOrder(tt.n, tt.round); !slices.Equal(got, tt.want) {
				t.Fatalf("roundOrder(%d, %d) = %v, want %v", tt.n, tt.round, got, tt.want)
			}
		})
	}
}

func TestRunServerStartFailure(t *testing.T) {
	cfg, _, _ := testConfig(t, 1)
	cfg.Servers = cfg.Servers[1:2]
	cfg.Only = []string{ScConnect, ScChurn}
	cfg.launch = func(context.Context, ServerSpec, string) (Server, error) { return nil, errors.New("boom") }
	res, err := Run(context.Background(), *cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 || res.Runs[0].Exit != -1 || !strings.Contains(res.Runs[0].Error, "boom") || res.Errors() != 3 {
		t.Errorf("runs %+v errors %d", res.Runs, res.Errors())
	}
}

func TestConfig(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	err := fs.Parse([]string{"--server", "wspush=bin/wspushd", "--server", "floor=bin/peer-floor -loops 2", "--rounds", "2", "--only", "connect,throughput",
		"--extra", "throughput=--duration 10s --publishers 8", "--persistent", "full"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Ref != "wspush" || len(c.Servers) != 2 || !slices.Equal(c.Servers[1].Args, []string{"-loops", "2"}) {
		t.Errorf("%+v", c)
	}
	e := c.entries()
	if len(e) != 3 || e[1].Name != "wspush-persistent" || len(e[1].Only) != 0 || !slices.Equal(e[1].Args, []string{"--ping-interval", "5s", "--latency-sample", "10ms", "--writer", "persistent"}) ||
		!slices.Equal(e[0].Args, []string{"--ping-interval", "5s", "--latency-sample", "10ms"}) || !slices.Equal(e[2].Args, []string{"-loops", "2"}) {
		t.Errorf("entries %+v", e)
	}
	c.Servers[0].Args = []string{"--ping-interval=25s"}
	if e := c.entries(); !slices.Equal(e[0].Args, []string{"--latency-sample", "10ms", "--ping-interval=25s"}) {
		t.Errorf("a wspushd that sets its own ping interval got %q", e[0].Args)
	}
	c.Servers[0].Args = nil
	p := c.plan()
	if len(p) != 2 || p[1].ID != ScThroughput || !slices.Equal(p[1].Args[len(p[1].Args)-4:], []string{"--duration", "10s", "--publishers", "8"}) {
		t.Errorf("plan %+v", p)
	}
	c.Persistent = PersistentOff
	if len(c.entries()) != 2 {
		t.Error("--persistent off still adds a variant")
	}
	c.Persistent = PersistentIdle
	c.Servers[0].Args = []string{"--writer=persistent"}
	if len(c.entries()) != 2 {
		t.Error("a variant of a server that sets --writer itself")
	}

	for _, bad := range []Config{
		{},
		{Servers: []ServerSpec{{Name: "a"}}, Rounds: 0},
		{Servers: []ServerSpec{{Name: "a"}, {Name: "a"}}, Rounds: 1},
		{Servers: []ServerSpec{{Name: "a"}}, Rounds: 1, Ref: "b"},
		{Servers: []ServerSpec{{Name: "a"}}, Rounds: 1, Persistent: "sometimes"},
		{Servers: []ServerSpec{{Name: "a"}}, Rounds: 1, Only: []string{"nope"}},
		{Servers: []ServerSpec{{Name: "a"}}, Rounds: 1, Extra: map[string][]string{"nope": nil}},
		{Servers: []ServerSpec{{Name: "a"}}, Rounds: 1, CPUProfile: "nope"},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if err := fs.Parse([]string{"--extra", "no-equals"}); err == nil {
		t.Error("--extra without =")
	}
	if err := fs.Parse([]string{"--client-args", "no-equals"}); err == nil {
		t.Error("--client-args without =")
	}
}

// TestClientArgs: --client-args go to one server and its persistent
// variant, and must name a server.
func TestClientArgs(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	err := fs.Parse([]string{"--server", "wspush=bin/wspushd", "--server", "wspush-z=bin/wspushd --compression",
		"--client-args", "wspush-z=--compression", "--client-args", "wspush-z=--payload json"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"--compression", "--payload", "json"}
	for _, e := range c.entries() {
		if got := e.ClientArgs; slices.Equal(got, want) != strings.HasPrefix(e.Name, "wspush-z") {
			t.Errorf("%s: client args %q", e.Name, got)
		}
	}
	c.ClientArgs["nope"] = nil
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("--client-args for no server: %v", err)
	}
}

// TestRunBench runs the test binary as a fake bench: a report and exit 3,
// then one that fails without a report.
func TestRunBench(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv(fakeEnv, "bench")
	jsonPath, logPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.log")
	st, err := runBench(context.Background(), exe, []string{"connect", "--json", jsonPath}, jsonPath, logPath, time.Minute)
	if err != nil || st.Exit != 3 || st.Report.Clients.ConnectsPerSec != 1234 || st.Report.Checks.Pass || st.CPU <= 0 {
		t.Fatalf("%+v err %v", st, err)
	}
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), "bench output") {
		t.Errorf("log %q", log)
	}
	t.Setenv(fakeEnv, "bench-broken")
	st, err = runBench(context.Background(), exe, []string{"connect", "--json", jsonPath}, jsonPath, logPath, time.Minute)
	if err == nil || st.Exit != 1 || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("broken: %+v err %v", st, err)
	}
	if lastLine(filepath.Join(dir, "none")) != "" {
		t.Error("lastLine of a missing file")
	}
}

// TestResummarize re-reads a run's JSON: runs whose report file exists get
// their metrics extracted again, the others keep theirs.
func TestResummarize(t *testing.T) {
	cfg, _, _ := testConfig(t, 1)
	cfg.Only = []string{ScThroughput}
	res, err := Run(context.Background(), *cfg)
	if err != nil {
		t.Fatal(err)
	}
	var target string
	for _, r := range res.Runs {
		if r.Server == "floor" {
			target = r.JSON
		}
	}
	rep := fakeReport("floor", ScThroughput, 2)
	rep.Throughput.DeliveriesPerSec = 50000
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(target, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	again := Config{From: cfg.JSON, MD: filepath.Join(dir, "again.md"), JSON: filepath.Join(dir, "again.json"), Out: &bytes.Buffer{},
		Command: []string{"bin/bench", "suite", "--from", cfg.JSON}}
	res2, err := Run(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := res2.Table.Get("floor", ScThroughput+".deliveries_per_s"); s == nil || s.Median != 50000 {
		t.Errorf("floor after re-extraction %+v", s)
	}
	if s, _ := res2.Table.Get("wspush", ScThroughput+".deliveries_per_s"); s == nil || s.Median != 225000 {
		t.Errorf("wspush kept %+v", s)
	}
	md, _ := os.ReadFile(again.MD)
	if !strings.Contains(string(md), "- summarized again from the per-run reports by: `bin/bench suite --from "+cfg.JSON+"`") ||
		!strings.Contains(string(md), "- command: `bin/bench suite --rounds 2`") {
		t.Errorf("markdown:\n%s", md)
	}
	if _, err := Run(context.Background(), Config{From: filepath.Join(dir, "none.json"), Out: &bytes.Buffer{}}); err == nil {
		t.Error("--from a missing file")
	}
}

func TestWspushdDefaults(t *testing.T) {
	for _, tc := range []struct{ args, want []string }{
		{nil, []string{"--ping-interval", "5s", "--latency-sample", "10ms"}},
		{[]string{"--writer", "persistent"}, []string{"--ping-interval", "5s", "--latency-sample", "10ms", "--writer", "persistent"}},
		{[]string{"--latency-sample=1s"}, []string{"--ping-interval", "5s", "--latency-sample=1s"}},
		{[]string{"-latency-sample", "-1s", "--ping-interval=25s"}, []string{"-latency-sample", "-1s", "--ping-interval=25s"}},
	} {
		if got := wspushdDefaults(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("wspushdDefaults(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
