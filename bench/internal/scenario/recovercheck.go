package scenario

import (
	"encoding/json"
	"fmt"

	"github.com/wspush/wspush/bench/internal/report"
)

// catchup checks one resumed client's deliveries: it must get exactly the
// seqs from+1 .. from+m of its topic, each once, in order.
type catchup struct {
	from  uint64 // the position resumed from (the last seq read live)
	seen  []bool // seen[k]: seq from+1+k arrived
	got   int    // distinct expected seqs that arrived
	max   uint64 // the highest seq so far
	dup   int64  // expected seqs that arrived again
	ooo   int64  // expected seqs that arrived after a higher one
	extra int64  // seqs outside from+1 .. from+m
}

func newCatchup(from uint64, m int) *catchup {
	return &catchup{from: from, seen: make([]bool, m)}
}

// observe takes one delivery's seq and reports whether every expected seq
// has now arrived.
func (c *catchup) observe(seq uint64) bool {
	if seq <= c.from || seq > c.from+uint64(len(c.seen)) {
		c.extra++
		return c.complete()
	}
	k := seq - c.from - 1
	switch {
	case c.seen[k]:
		c.dup++
	default:
		c.seen[k] = true
		c.got++
		if seq < c.max {
			c.ooo++
		}
	}
	c.max = max(c.max, seq)
	return c.complete()
}

func (c *catchup) complete() bool { return c.got == len(c.seen) }

// missing is how many expected seqs never arrived.
func (c *catchup) missing() int64 { return int64(len(c.seen) - c.got) }

// recoverVerdict judges the resumed clients: every one answered
// recovered:true and given every missed message exactly once, in order.
// target is the number of clients asked for, m the messages missed.
func recoverVerdict(clients []*rclient, target int, m int) *report.Checks {
	c := &report.Checks{Expected: int64(target) * int64(m), ServerDropped: -1, ServerLost: -1, Drained: true}
	var up, notRecovered, noAnswer int
	for _, cl := range clients {
		if !cl.resumed || cl.cu == nil {
			continue
		}
		up++
		switch {
		case !cl.gotSub:
			noAnswer++
		case !cl.recovered:
			notRecovered++
		}
		c.Received += int64(cl.cu.got) + cl.cu.dup + cl.cu.extra
		c.Missing += cl.cu.missing()
		c.Duplicates += cl.cu.dup
		c.OutOfOrder += cl.cu.ooo
		c.Unknown += cl.cu.extra
		if !cl.cu.complete() {
			c.Drained = false
		}
	}
	switch {
	case up < target:
		c.Verdict = fmt.Sprintf("only %d of %d clients reconnected", up, target)
	case noAnswer > 0:
		c.Verdict = fmt.Sprintf("%d clients got no subscribed frame on resuming", noAnswer)
	case notRecovered > 0:
		c.Verdict = fmt.Sprintf("%d of %d clients got recovered:false: run the server with --history-size >= -m (%d) and resume within its --history-ttl", notRecovered, target, m)
	case c.Duplicates > 0 || c.OutOfOrder > 0:
		c.Verdict = fmt.Sprintf("%d duplicate and %d out-of-order deliveries", c.Duplicates, c.OutOfOrder)
	case c.Unknown > 0:
		c.Verdict = fmt.Sprintf("%d deliveries outside the missed range", c.Unknown)
	case c.Missing > 0:
		c.Verdict = fmt.Sprintf("%d missed messages never arrived", c.Missing)
	default:
		c.Pass, c.Verdict = true, "every client recovered every missed message exactly once, in seq order"
	}
	return c
}

// position is a topic's (epoch, seq) in a subscribed frame.
type position struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// subscribed is the first frame after the 101 with positions=1 or since.
type subscribed struct {
	Op        string              `json:"op"`
	Positions map[string]position `json:"positions"`
	Recovered map[string]bool     `json:"recovered"`
}

// parseSubscribed parses b as a subscribed frame (ok false: something else).
func parseSubscribed(b []byte) (subscribed, bool) {
	var s subscribed
	if err := json.Unmarshal(b, &s); err != nil || s.Op != "subscribed" {
		return s, false
	}
	return s, true
}
