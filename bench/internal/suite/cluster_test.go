package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/internal/redistest"
)

func TestStartRedisMissing(t *testing.T) {
	_, err := StartRedis(context.Background(), filepath.Join(t.TempDir(), "redis-server"), filepath.Join(t.TempDir(), "r.log"))
	if !errors.Is(err, ErrNoRedis) || !strings.Contains(err.Error(), "scripts/deps.sh") {
		t.Fatalf("error %v", err)
	}
}

// clusterReport is a fake step report: the one node twice the cluster's
// throughput, the same latencies.
func clusterReport(cluster bool, id string) *report.Report {
	sum := stats.Summary{Count: 10, P50: 2, P99: 8}
	r := &report.Report{Scenario: id, Latency: &sum, Checks: &report.Checks{Pass: true, Verdict: "ok"}}
	if id == ScBcastLarge {
		r.LastSubscriber = &report.LastSub{Messages: 10, MedianMs: 4, P99Ms: 9}
		return r
	}
	rate := 200000.0
	if cluster {
		rate = 100000
	}
	r.Throughput = &report.Throughput{Deliveries: 1e6, DeliveriesPerSec: rate, ServerCPUSeconds: 2, CPUPerMillion: 2}
	return r
}

// TestRunClusterFake runs the comparison with a real redis-server, fake
// wspushd nodes (this test binary) and fake bench steps.
func TestRunClusterFake(t *testing.T) {
	redistest.RequireCommands(t, "redis-server")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, "wspushd")
	dir := t.TempDir()
	var mu sync.Mutex
	var steps [][]string
	cfg := ClusterConfig{Wspushd: exe, Nodes: 3, Rounds: 2, Quick: true, HistorySize: 100, JSON: dir + "/c.json", MD: dir + "/c.md",
		Exe: "bin/bench", Out: &bytes.Buffer{}, pause: time.Millisecond, Extra: map[string][]string{ScThroughput: {"--duration", "1s"}}}
	cfg.runStep = func(_ context.Context, _ string, args []string, jsonPath, _ string, _ time.Duration) (StepResult, error) {
		mu.Lock()
		steps = append(steps, args)
		mu.Unlock()
		id := ScBcastLarge
		if args[0] == "throughput" {
			id = ScThroughput
		}
		rep := clusterReport(strings.Contains(jsonPath, "-"+SetupCluster+"-"), id)
		b, _ := json.Marshal(rep)
		return StepResult{Report: rep}, os.WriteFile(jsonPath, b, 0o644)
	}
	res, err := RunCluster(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors() != 0 || len(res.Runs) != 8 || len(res.ServerRuns) != 2*(3+1) {
		t.Fatalf("errors %d, runs %d, server runs %d: %s", res.Errors(), len(res.Runs), len(res.ServerRuns), cfg.Out)
	}
	for _, args := range steps {
		i := slices.Index(args, "--server-pid")
		cluster := strings.Count(args[i+1], ",") == 2
		if ws := args[slices.Index(args, "--ws")+1]; cluster != (strings.Count(ws, ",") == 2) {
			t.Errorf("--ws %s with --server-pid %s", ws, args[i+1])
		}
		if args[0] == "throughput" && !slices.Contains(args, "1s") {
			t.Errorf("--extra not applied: %q", args)
		}
	}
	log, err := os.ReadFile(res.ServerRuns[0].Log)
	if err != nil || !strings.Contains(string(log), "--broker redis://127.0.0.1:") || !strings.Contains(string(log), "--history-size 100") {
		t.Errorf("first node's command line: %s (%v)", strings.SplitN(string(log), "\n", 2)[0], err)
	}
	for _, row := range res.Rows {
		if row.Metric.Key == "deliveries_per_s" && math.Abs(row.Ratio-0.5) > 1e-9 {
			t.Errorf("throughput ratio %v", row.Ratio)
		}
		if row.Metric.Key == "latency_p99_ms" && row.Metric.Scenario == ScBcastLarge && row.Ratio != 1 {
			t.Errorf("broadcast p99 ratio %v", row.Ratio)
		}
	}
	if _, ok := res.Table.Get(SetupCluster, ScThroughput+".redis_cpu_s_per_million"); !ok {
		t.Error("no Redis CPU for the cluster")
	}
	md, err := os.ReadFile(cfg.MD)
	if err != nil || !strings.Contains(string(md), "cluster / one node") || !strings.Contains(string(md), "0.50×") {
		t.Errorf("markdown: %s %v", md, err)
	}
}
