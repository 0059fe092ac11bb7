package scenario

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
)

// ConnectConfig drives the connect scenario: ramp to Conns connections,
// hold them idle, measure the server at the plateau.
type ConnectConfig struct {
	Common
	// Baseline measures the server before connecting, so that per-connection
	// figures are (plateau − baseline) / connections.
	Baseline bool `json:"baseline"`
	// Hold keeps the connections idle this long before measuring.
	Hold time.Duration `json:"hold_ns"`
	// KeepaliveHold, when positive, keeps them idle this much longer after
	// that ("fresh") snapshot and measures again: long enough for a
	// server's keepalive pings to have gone round several times, so that
	// idle memory is read in its steady state. The server's CPU over this
	// hold per keepalive ping sent is reported too.
	KeepaliveHold time.Duration `json:"keepalive_hold_ns,omitempty"`
}

// Register adds the connect flags to fs.
func (c *ConnectConfig) Register(fs *flag.FlagSet) {
	c.Common.Register(fs, 1000)
	fs.Float64Var(&c.DialRate, "rate", 0, "connections per second (alias of --dial-rate; 0: max speed)")
	fs.BoolVar(&c.Baseline, "baseline", false, "measure the server before connecting; per-connection = (plateau - baseline)/n")
	fs.DurationVar(&c.Hold, "hold", 2*time.Second, "keep the connections idle this long before measuring (let GC settle)")
	fs.DurationVar(&c.KeepaliveHold, "keepalive-hold", 0, "after the first measurement, keep the connections idle this much longer and measure again "+
		"(cover 3 of the server's ping intervals; also gives CPU per keepalive from wspush_pings_sent_total); 0: no second measurement")
}

// Connect runs the connect scenario.
func Connect(ctx context.Context, cfg ConnectConfig) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(&cfg.Common, "connect", cfg)
	err := connect(ctx, r, cfg)
	return r.finish(err)
}

func connect(ctx context.Context, r *run, cfg ConnectConfig) error {
	var base serverstat.Snapshot
	if cfg.Baseline {
		base = r.snap(ctx, "baseline")
	}
	topics := topicNames(cfg.Topics)
	fl, err := cfg.startFleet(ctx, cfg.baseSpec(fleet.ModeHold, topics))
	if err != nil {
		return err
	}
	r.setFleet(fl)
	rctx, rcancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	ready, err := fl.WaitReady(rctx)
	rcancel()
	if err != nil {
		return fmt.Errorf("connect phase: %w", err)
	}
	if err := SleepCtx(ctx, cfg.Hold); err != nil {
		return err
	}
	var plateau, ka serverstat.Snapshot
	if cfg.KeepaliveHold > 0 {
		plateau = r.snapUnmarked(ctx, SnapPlateau)
		if err := SleepCtx(ctx, cfg.KeepaliveHold); err != nil {
			return err
		}
		ka = r.snapUnmarked(ctx, SnapKeepalive)
	} else {
		plateau = r.snap(ctx, SnapPlateau)
	}
	m, err := fl.Finish(ctx, fleet.Finish{LastSeq: make([]uint64, len(topics))})
	if err != nil {
		return err
	}
	r.clients(m, int64(cfg.Conns), 0)
	if ready.Up != m.Up {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("READY said %d up, the results %d", ready.Up, m.Up))
	}
	if n := m.Lost.Total(); n > 0 {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%d connections ended during the hold", n))
	}
	if r.rep.Server != nil && m.Up > 0 {
		r.rep.Server.PerConn = perConn(base, plateau, cfg.Baseline, float64(m.Up))
		if cfg.KeepaliveHold > 0 {
			r.keepaliveFigures(base, plateau, ka, cfg, float64(m.Up))
		}
		if v, ok := base.Metric(serverstat.Published); cfg.Baseline && ok && v > 0 {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(
				"the server had already published %.0f messages: memory kept from earlier traffic is reused, so per-connection figures read low", v))
		}
		if !cfg.Baseline {
			r.rep.Notes = append(r.rep.Notes, "per-connection figures are plateau / n (no --baseline): they include the idle server")
		}
	}
	return nil
}

// perConn divides the plateau (less the baseline, when taken) by n.
func perConn(base, plateau serverstat.Snapshot, useBase bool, n float64) map[string]float64 {
	out := map[string]float64{}
	if p := plateau.Proc; p != nil {
		var b serverstat.Proc
		if useBase && base.Proc != nil {
			b = *base.Proc
		}
		out["rss_bytes"] = float64(p.RSS-b.RSS) / n
		out["fds"] = float64(p.FDs-b.FDs) / n
		out["threads"] = float64(p.Threads-b.Threads) / n
	}
	for key, name := range map[string]string{
		"heap_inuse_bytes":   serverstat.HeapInuse,
		"goroutines":         serverstat.Goroutines,
		"wspush_connections": serverstat.Connections,
	} {
		v, ok := plateau.Metric(name)
		if !ok {
			continue
		}
		if useBase {
			bv, _ := base.Metric(name)
			v -= bv
		}
		out[key] = v / n
	}
	return out
}

// keepaliveFigures adds the per-connection figures after the keepalive
// hold (under AfterKeepalives keys) and a note on the CPU per keepalive.
func (r *run) keepaliveFigures(base, plateau, ka serverstat.Snapshot, cfg ConnectConfig, n float64) {
	for k, v := range perConn(base, ka, cfg.Baseline, n) {
		r.rep.Server.PerConn[AfterKeepalives+k] = v
	}
	us, pings, pongs, ok := KeepaliveCost(plateau, ka)
	switch {
	case ok:
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(
			"keepalive hold %v: %.0f pings sent, %.0f pongs received; server CPU per keepalive (ping+pong) %.1f µs",
			cfg.KeepaliveHold, pings, pongs, us))
	case pings == 0:
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(
			"keepalive hold %v: the server sent no ping (is its ping interval over a third of the hold?)", cfg.KeepaliveHold))
	}
}
