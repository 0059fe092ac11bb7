package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/publish"
	"github.com/wspush/wspush/bench/internal/report"
)

// BroadcastConfig drives the broadcast scenario: Conns subscribers, then
// Messages publishes of Size bytes, each delivery checked and timed.
type BroadcastConfig struct {
	Common
	// Messages is the number of publishes.
	Messages int `json:"messages"`
	// Size is the data object's size in bytes.
	Size int `json:"size"`
	// Rate is publishes per second (0: back to back).
	Rate float64 `json:"rate"`
	// Publishers is the number of concurrent publishers.
	Publishers int `json:"publishers"`
	// Payload is the data objects' kind (publish.ParsePayload).
	Payload string `json:"payload"`
}

// Register adds the broadcast flags to fs.
func (c *BroadcastConfig) Register(fs *flag.FlagSet) {
	c.Common.Register(fs, 1000)
	fs.IntVar(&c.Messages, "m", 100, "messages to publish")
	fs.IntVar(&c.Size, "s", 128, "bytes of each message's data object")
	fs.Float64Var(&c.Rate, "rate", 0, "publishes per second (0: back to back)")
	fs.IntVar(&c.Publishers, "publishers", 1, "concurrent publishers")
	payloadFlag(fs, &c.Payload)
}

func (c *BroadcastConfig) validate() error {
	if err := c.Common.validate(); err != nil {
		return err
	}
	if c.Messages < 1 {
		return errors.New("-m must be >= 1")
	}
	if c.Publishers < 1 {
		return errors.New("--publishers must be >= 1")
	}
	_, err := publish.ParsePayload(c.Payload)
	return err
}

// Broadcast runs the broadcast scenario.
func Broadcast(ctx context.Context, cfg BroadcastConfig) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(&cfg.Common, "broadcast", cfg)
	err := broadcast(ctx, r, cfg)
	return r.finish(err)
}

func broadcast(ctx context.Context, r *run, cfg BroadcastConfig) error {
	topics := topicNames(cfg.Topics)
	spec := cfg.baseSpec(fleet.ModeHold, topics)
	spec.TrackMessages = (cfg.Messages + cfg.Topics - 1) / cfg.Topics
	fl, err := cfg.startFleet(ctx, spec)
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
	r.mark("connected", ready.Up)
	before := r.snap(ctx, "before")
	pub := publish.NewClient(cfg.API, cfg.Size, cfg.Publishers)
	pub.Payload, _ = publish.ParsePayload(cfg.Payload)
	defer pub.Close()
	pres, err := pub.Run(ctx, publish.Plan{Topics: topics, Count: cfg.Messages, Rate: cfg.Rate, Publishers: cfg.Publishers}, &r.pub)
	if err != nil {
		return err
	}
	r.mark("published", noConnOverride)
	m, err := fl.Finish(ctx, fleet.Finish{LastSeq: pres.LastSeq})
	if err != nil {
		return err
	}
	after := r.snap(ctx, "after")
	r.clients(m, int64(cfg.Conns), 0)
	r.cost(m, before, after)
	r.rep.Publish = publishSummary(pres)
	r.rateNote(cfg.Rate)
	r.rep.LastSubscriber = LastSubscriber(m, pres.LastSeq)
	r.rep.ServerLatency = serverLatency(before, after, r.rep.Latency, r.rep.LastSubscriber, m.Up)
	r.rep.Checks = judge(m, int64(cfg.Conns), cfg.expectedDeliveries(r, m, pres.Recipients), before, after)
	if m.Expected != pres.Recipients && len(cfg.apiList()) <= 1 {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(
			"the clients expected %d deliveries (readers × last seq), the API's recipients sum to %d", m.Expected, pres.Recipients))
	}
	if !m.Drained {
		r.rep.Notes = append(r.rep.Notes, "the drain wait ended before every expected delivery arrived")
	}
	return nil
}

// publishSummary turns a publisher result into the report's section.
func publishSummary(p *publish.Result) *report.Publish {
	s := &report.Publish{
		Sent: p.Sent, Failed: p.Errors.Total(), Errors: p.Errors, Recipients: p.Recipients,
		Seconds: p.Elapsed.Seconds(), API: p.API.Summarize(),
	}
	if s.Seconds > 0 {
		s.RatePerSec = float64(p.Sent) / s.Seconds
	}
	return s
}
