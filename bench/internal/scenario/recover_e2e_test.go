package scenario

import (
	"context"
	"strings"
	"testing"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/server"
)

// recoverConfig is a small recover run: 50 clients miss 20 messages.
func recoverConfig(c Common) RecoverConfig {
	return RecoverConfig{Common: c, Messages: 20, Warmup: 5, Size: 64, Publishers: 2}
}

func assertRecovered(t *testing.T, rep *report.Report, err error, conns, m int) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Checks; !c.Pass || c.Received != int64(conns*m) || c.Missing != 0 {
		t.Fatalf("checks %+v", c)
	}
	rc := rep.Recover
	if rc == nil || rc.Clients != int64(conns) || rc.Recovered != int64(conns) || rc.CaughtUp != int64(conns) || rc.FromSeq != 5 {
		t.Fatalf("recover %+v", rc)
	}
	if rc.CatchUp.Count != int64(conns) || rc.LastMs <= 0 || rc.ServerCPUSeconds < 0 {
		t.Errorf("catch-up %+v last %v cpu %v", rc.CatchUp, rc.LastMs, rc.ServerCPUSeconds)
	}
}

// TestRecoverInProcess: one node keeping 100 messages per topic.
func TestRecoverInProcess(t *testing.T) {
	s := startServerWith(t, server.Config{HistorySize: 100})
	cfg := recoverConfig(common(t, s, 50, 1))
	rep, err := Recover(context.Background(), cfg)
	assertRecovered(t, rep, err, 50, 20)
}

// TestRecoverCluster: two nodes on Redis; each client resumes on the other
// node than the one it read live from.
func TestRecoverCluster(t *testing.T) {
	cfg := recoverConfig(startCluster(t, 2, 100, 50))
	rep, err := Recover(context.Background(), cfg)
	assertRecovered(t, rep, err, 50, 20)
}

// TestRecoverNoHistory: without history every client is told
// recovered:false, and the verdict says what to change.
func TestRecoverNoHistory(t *testing.T) {
	s := startServer(t)
	cfg := recoverConfig(common(t, s, 10, 1))
	rep, err := Recover(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Checks; c.Pass || !strings.Contains(c.Verdict, "recovered:false") || !strings.Contains(c.Verdict, "--history-size") {
		t.Fatalf("checks %+v", c)
	}
}
