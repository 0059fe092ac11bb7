package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/publish"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
)

// FlowConfig is what throughput and slow share: subscribers, then a
// publisher at a rate (or K publishers flat out) for a duration.
type FlowConfig struct {
	Common
	// Duration is the publishing time.
	Duration time.Duration `json:"duration_ns"`
	// Rate is publishes per second over all publishers (0: flat out).
	Rate float64 `json:"rate"`
	// Publishers is the number of concurrent publishers.
	Publishers int `json:"publishers"`
	// Size is the data object's size in bytes.
	Size int `json:"size"`
	// Payload is the data objects' kind (publish.ParsePayload).
	Payload string `json:"payload"`
}

func (c *FlowConfig) register(fs *flag.FlagSet, conns int, rate float64, size int) {
	c.Common.Register(fs, conns)
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "publishing time")
	fs.Float64Var(&c.Rate, "rate", rate, "publishes per second over all publishers (0: as fast as --publishers go)")
	fs.IntVar(&c.Publishers, "publishers", 1, "concurrent publishers")
	fs.IntVar(&c.Size, "s", size, "bytes of each message's data object")
	payloadFlag(fs, &c.Payload)
}

func (c *FlowConfig) validate() error {
	if err := c.Common.validate(); err != nil {
		return err
	}
	if c.Duration <= 0 {
		return errors.New("--duration must be > 0")
	}
	if c.Publishers < 1 {
		return errors.New("--publishers must be >= 1")
	}
	_, err := publish.ParsePayload(c.Payload)
	return err
}

// flowResult is what a flow run gathered.
type flowResult struct {
	m             *fleet.Merged
	pub           *publish.Result
	before, after serverstat.Snapshot
	pubStart      time.Time
}

// flow connects the fleet (Conns readers, slow non-readers), publishes per
// cfg, finishes the fleet and measures the server before and after.
func flow(ctx context.Context, r *run, cfg FlowConfig, slow int) (*flowResult, error) {
	topics := topicNames(cfg.Topics)
	spec := cfg.baseSpec(fleet.ModeHold, topics)
	spec.Slow = slow
	fl, err := cfg.startFleet(ctx, spec)
	if err != nil {
		return nil, err
	}
	r.setFleet(fl)
	rctx, rcancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	ready, err := fl.WaitReady(rctx)
	rcancel()
	if err != nil {
		return nil, fmt.Errorf("connect phase: %w", err)
	}
	r.mark("connected", ready.Up)
	fr := &flowResult{before: r.snap(ctx, "before")}
	pub := publish.NewClient(cfg.API, cfg.Size, cfg.Publishers)
	pub.Payload, _ = publish.ParsePayload(cfg.Payload)
	defer pub.Close()
	fr.pubStart = time.Now()
	fr.pub, err = pub.Run(ctx, publish.Plan{Topics: topics, Duration: cfg.Duration, Rate: cfg.Rate, Publishers: cfg.Publishers}, &r.pub)
	if err != nil {
		return nil, err
	}
	r.mark("published", noConnOverride)
	if fr.m, err = fl.Finish(ctx, fleet.Finish{LastSeq: fr.pub.LastSeq}); err != nil {
		return nil, err
	}
	fr.after = r.snap(ctx, "after")
	r.clients(fr.m, int64(cfg.Conns+slow), int64(slow))
	r.cost(fr.m, fr.before, fr.after)
	r.rep.Publish = publishSummary(fr.pub)
	r.rateNote(cfg.Rate)
	if !fr.m.Drained {
		r.rep.Notes = append(r.rep.Notes, "the drain wait ended before every expected delivery arrived")
	}
	return fr, nil
}

// ThroughputConfig drives the throughput scenario.
type ThroughputConfig struct {
	FlowConfig
}

// Register adds the throughput flags to fs.
func (c *ThroughputConfig) Register(fs *flag.FlagSet) { c.register(fs, 1000, 0, 128) }

// Throughput runs the throughput scenario: deliveries/s, latency under
// load, server CPU per million deliveries, drops.
func Throughput(ctx context.Context, cfg ThroughputConfig) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(&cfg.Common, "throughput", cfg)
	err := throughput(ctx, r, cfg)
	return r.finish(err)
}

func throughput(ctx context.Context, r *run, cfg ThroughputConfig) error {
	fr, err := flow(ctx, r, cfg.FlowConfig, 0)
	if err != nil {
		return err
	}
	m := fr.m
	r.rep.Checks = judge(m, int64(cfg.Conns), cfg.expectedDeliveries(r, m, fr.pub.Recipients), fr.before, fr.after)
	t := &report.Throughput{Deliveries: int64(m.Counts.Received), ServerCPUSeconds: -1}
	if m.LastRecvNs > fr.pubStart.UnixNano() {
		t.Seconds = float64(m.LastRecvNs-fr.pubStart.UnixNano()) / 1e9
		t.DeliveriesPerSec = float64(t.Deliveries) / t.Seconds
	}
	if fr.before.Proc != nil && fr.after.Proc != nil {
		t.ServerCPUSeconds = fr.after.Proc.CPU - fr.before.Proc.CPU
		if t.Deliveries > 0 {
			t.CPUPerMillion = t.ServerCPUSeconds / (float64(t.Deliveries) / 1e6)
		}
	}
	r.rep.Throughput = t
	return nil
}

// SlowConfig drives the slow scenario.
type SlowConfig struct {
	FlowConfig
	// Slow is the number of clients that never read.
	Slow int `json:"slow"`
}

// Register adds the slow flags to fs.
func (c *SlowConfig) Register(fs *flag.FlagSet) {
	c.register(fs, 100, 500, 4096)
	fs.IntVar(&c.Slow, "k", 10, "clients that never read")
}

// Slow runs the slow scenario: K clients never read while Conns others do;
// the readers' latency and loss, the server's RSS over time and drops.
func Slow(ctx context.Context, cfg SlowConfig) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Slow < 0 {
		return nil, errors.New("-k must be >= 0")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(&cfg.Common, "slow", cfg)
	err := slowRun(ctx, r, cfg)
	return r.finish(err)
}

func slowRun(ctx context.Context, r *run, cfg SlowConfig) error {
	fr, err := flow(ctx, r, cfg.FlowConfig, cfg.Slow)
	if err != nil {
		return err
	}
	m := fr.m
	c := judge(m, int64(cfg.Conns+cfg.Slow), m.Expected, fr.before, fr.after)
	// The server may drop for the slow clients; the readers must miss nothing.
	switch {
	case m.Up < int64(cfg.Conns+cfg.Slow) || m.Lost.Total() > 0 || m.Expected == 0:
		// judge's verdict stands
	case c.Missing > 0:
		c.Pass = false
		c.Verdict = fmt.Sprintf("the reading clients missed %d deliveries (server dropped %.0f overall)", c.Missing, c.ServerDropped)
	case c.Duplicates == 0 && c.OutOfOrder == 0 && c.Unknown == 0:
		c.Pass = true
		c.Verdict = fmt.Sprintf("readers got every message once, in order; the server dropped %s for the slow clients", dropWord(c.ServerDropped))
	}
	r.rep.Checks = c
	var peak int64
	for _, p := range r.series.Points() {
		peak = max(peak, p.ServerRSS)
	}
	if peak > 0 && fr.before.Proc != nil {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("server RSS %.1f MiB before publishing, peak %.1f MiB during the run (%.1f KiB more per slow client)",
			float64(fr.before.Proc.RSS)/(1<<20), float64(peak)/(1<<20), float64(peak-fr.before.Proc.RSS)/1024/float64(max(cfg.Slow, 1))))
	}
	return nil
}

func dropWord(v float64) string {
	if v < 0 {
		return "an unknown number of messages"
	}
	return fmt.Sprintf("%.0f messages", v)
}
