package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
)

// ChurnConfig drives the churn scenario: connect/close cycles at a rate.
type ChurnConfig struct {
	Common
	// Rate is cycles per second over all processes.
	Rate float64 `json:"rate"`
	// Duration is the churn time.
	Duration time.Duration `json:"duration_ns"`
	// HoldConn is how long each connection stays open.
	HoldConn time.Duration `json:"hold_conn_ns"`
	// Concurrency bounds the cycles in flight over all processes.
	Concurrency int `json:"concurrency"`
	// SettleTimeout bounds the wait for the server to return to its
	// starting connection count before the after-measurement.
	SettleTimeout time.Duration `json:"settle_timeout_ns"`
	// ServerGC forces a GC in the server before each snapshot
	// (serverstat.ForceGC), so that heap figures compare live heaps.
	ServerGC bool `json:"server_gc"`
}

// Register adds the churn flags to fs.
func (c *ChurnConfig) Register(fs *flag.FlagSet) {
	c.Common.Register(fs, -1)
	fs.Float64Var(&c.Rate, "rate", 200, "connect/close cycles per second over all processes")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "churn time")
	fs.DurationVar(&c.HoldConn, "hold-conn", 0, "how long each connection stays open before its close handshake")
	fs.IntVar(&c.Concurrency, "concurrency", 256, "cycles in flight at once over all processes")
	fs.DurationVar(&c.SettleTimeout, "settle-timeout", 30*time.Second, "bound on the wait for the server to settle afterwards")
	fs.BoolVar(&c.ServerGC, "server-gc", false, "force a GC in the server before each snapshot (GET /debug/pprof/heap?gc=1: wspushd --pprof), so heap figures compare live heaps")
}

// Churn runs the churn scenario: cycles, failures, and the server's fds,
// goroutines and RSS before and after (once it settled).
func Churn(ctx context.Context, cfg ChurnConfig) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("--rate and --duration must be > 0")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(&cfg.Common, "churn", cfg)
	err := churn(ctx, r, cfg)
	return r.finish(err)
}

// gcSnap takes snapshot name, after forcing a GC in the server when asked.
func gcSnap(ctx context.Context, r *run, cfg ChurnConfig, name string) serverstat.Snapshot {
	if cfg.ServerGC {
		for _, api := range cfg.apiList() {
			if err := serverstat.ForceGC(ctx, api); err != nil {
				r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("no GC before the %s snapshot: %v", name, err))
			}
		}
	}
	return r.snap(ctx, name)
}

func churn(ctx context.Context, r *run, cfg ChurnConfig) error {
	before := gcSnap(ctx, r, cfg, "before")
	spec := cfg.baseSpec(fleet.ModeChurn, topicNames(1))
	spec.Conns = 0
	spec.ChurnRate, spec.ChurnDuration, spec.ChurnHold = cfg.Rate, cfg.Duration, cfg.HoldConn
	spec.ChurnConcurrency = cfg.Concurrency
	fl, err := cfg.startFleet(ctx, spec)
	if err != nil {
		return err
	}
	r.setFleet(fl)
	if _, err := fl.WaitReady(ctx); err != nil {
		return err
	}
	start := time.Now()
	m, err := fl.Finish(ctx, fleet.Finish{})
	if err != nil {
		return err
	}
	churnSecs := time.Since(start).Seconds()
	settled := settle(ctx, cfg, before)
	after := gcSnap(ctx, r, cfg, "after")
	r.clients(m, m.Cycles+m.CycleFailed, 0)
	r.rep.Clients.Up = m.Cycles
	if r.rep.Clients.ConnectSeconds > 0 {
		r.rep.Clients.ConnectsPerSec = float64(m.Cycles) / r.rep.Clients.ConnectSeconds
	}
	ch := &report.Churn{Cycles: m.Cycles, Failed: m.CycleFailed, Cycle: m.CycleH.Summarize(), Settled: settled}
	if churnSecs > 0 {
		ch.CyclesPerSec = float64(m.Cycles) / churnSecs
	}
	r.rep.Churn = ch
	if d, ok := delta(before, after); ok {
		r.rep.Notes = append(r.rep.Notes, "server change over the run (after - before): "+d)
	}
	if !settled {
		r.rep.Notes = append(r.rep.Notes, "the server's connection count did not return to its starting value in --settle-timeout")
	}
	return nil
}

// settle waits until the server reports no more connections than before
// (when /metrics answers), then one --settle more for memory to be freed.
func settle(ctx context.Context, cfg ChurnConfig, before serverstat.Snapshot) bool {
	want, ok := before.Metric(serverstat.Connections)
	if !ok {
		SleepCtx(ctx, cfg.Settle)
		return false
	}
	deadline := time.Now().Add(cfg.SettleTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s := serverstat.TakeAll(ctx, nil, cfg.apiList())
		if v, ok := s.Metric(serverstat.Connections); ok && v <= want {
			SleepCtx(ctx, cfg.Settle)
			return true
		}
		SleepCtx(ctx, 100*time.Millisecond)
	}
	return false
}

// delta describes after − before of the server's numbers.
func delta(before, after serverstat.Snapshot) (string, bool) {
	var parts []string
	if b, a := before.Proc, after.Proc; b != nil && a != nil {
		parts = append(parts, fmt.Sprintf("fds %+d", a.FDs-b.FDs), fmt.Sprintf("threads %+d", a.Threads-b.Threads),
			fmt.Sprintf("rss %+.1f MiB", float64(a.RSS-b.RSS)/(1<<20)))
	}
	for _, name := range []string{serverstat.Goroutines, serverstat.Connections} {
		if hasBoth(before, after, name) {
			parts = append(parts, fmt.Sprintf("%s %+.0f", name, metricDelta(before, after, name)))
		}
	}
	if hasBoth(before, after, serverstat.HeapInuse) {
		parts = append(parts, fmt.Sprintf("%s %+.1f MiB", serverstat.HeapInuse, metricDelta(before, after, serverstat.HeapInuse)/(1<<20)))
	}
	if len(parts) == 0 {
		return "", false
	}
	s := parts[0]
	for _, p := range parts[1:] {
		s += ", " + p
	}
	return s, true
}

func hasBoth(a, b serverstat.Snapshot, name string) bool {
	_, ok1 := a.Metric(name)
	_, ok2 := b.Metric(name)
	return ok1 && ok2
}
