package scale

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/publish"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/scenario"
)

// Published is what the run published.
type Published struct {
	// Broadcasts and Groups count the publishes to the common topic and to
	// the group topics that the API accepted.
	Broadcasts int `json:"broadcasts"`
	// Groups counts the accepted group publishes.
	Groups int `json:"groups"`
	// Failed counts publishes the API refused or that failed.
	Failed int `json:"failed"`
	// Errors are the first few failures.
	Errors []string `json:"errors,omitempty"`
	// LastSeq is the last seq per topic (the common topic first).
	LastSeq []uint64 `json:"last_seq"`
	// FirstNs is when the first publish was sent (Unix ns).
	FirstNs int64 `json:"first_ns"`
	// Seconds is the publishing phase.
	Seconds float64 `json:"seconds"`
}

// maxErrors bounds Published.Errors.
const maxErrors = 5

// publishAll sends c.Broadcasts publishes to topics[0], one every
// c.BroadcastEvery, publish i through node i's API (mod the nodes: Redis
// carries it to the others), then c.GroupPublishes to the groups, j to
// group j mod groups through node j, back to back.
func (c *Config) publishAll(ctx context.Context, apis []string, topics []string) (Published, error) {
	p := Published{LastSeq: make([]uint64, len(topics))}
	pub := publish.NewClient(strings.Join(apis, ","), c.Size, 1)
	defer pub.Close()
	start := time.Now()
	p.FirstNs = start.UnixNano()
	one := func(i, topic int) bool {
		r, err := pub.PublishVia(ctx, i, topics[topic])
		if err != nil {
			p.Failed++
			if len(p.Errors) < maxErrors {
				p.Errors = append(p.Errors, fmt.Sprintf("%s via %s: %v", topics[topic], apis[i%len(apis)], err))
			}
			return false
		}
		p.LastSeq[topic] = max(p.LastSeq[topic], r.Seq)
		return true
	}
	for i := 0; i < c.Broadcasts; i++ {
		if err := scenario.SleepCtx(ctx, time.Until(start.Add(time.Duration(i)*c.BroadcastEvery))); err != nil {
			return p, err
		}
		if one(i, 0) {
			p.Broadcasts++
		}
		fmt.Fprintf(c.Err, "scale: broadcast %d/%d through node%d\n", i+1, c.Broadcasts, i%len(apis)+1)
	}
	for j := 0; j < c.GroupPublishes && ctx.Err() == nil; j++ {
		if one(j, 1+j%(len(topics)-1)) {
			p.Groups++
		}
	}
	p.Seconds = time.Since(start).Seconds()
	if p.Broadcasts == 0 {
		return p, fmt.Errorf("%w: no broadcast accepted: %v", ErrPublish, p.Errors)
	}
	return p, ctx.Err()
}

// broadcastLast is the time from each broadcast (the common topic's
// messages) to its last subscriber, over the broadcasts.
func broadcastLast(m *fleet.Merged, lastSeq []uint64) *report.LastSub {
	if len(lastSeq) == 0 {
		return &report.LastSub{}
	}
	return scenario.LastSubscriber(m, lastSeq[:1])
}
