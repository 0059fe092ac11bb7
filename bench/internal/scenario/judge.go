package scenario

import (
	"fmt"
	"slices"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
)

// LastSubscriber summarises the per-message table over the published
// messages (seqs 1..lastSeq[topic] that were tracked).
func LastSubscriber(m *fleet.Merged, lastSeq []uint64) *report.LastSub {
	ls := &report.LastSub{}
	var lats []int64
	for ti, maxes := range m.Msgs.MaxLatNs {
		if ti >= len(lastSeq) {
			break
		}
		want := int64(0)
		if ti < len(m.TopicReaders) {
			want = m.TopicReaders[ti]
		}
		for s := 0; s < len(maxes) && uint64(s) < lastSeq[ti]; s++ {
			ls.Messages++
			n := m.Msgs.Count[ti][s]
			if n >= want {
				ls.Complete++
			}
			last := 0.0
			if n > 0 {
				lats = append(lats, maxes[s])
				last = float64(maxes[s]) / 1e6
			}
			ls.PerMessage = append(ls.PerMessage, report.MessageLast{Index: s*len(lastSeq) + ti, Deliveries: n, LastMs: last})
		}
	}
	slices.SortFunc(ls.PerMessage, func(a, b report.MessageLast) int { return a.Index - b.Index })
	if len(lats) == 0 {
		return ls
	}
	slices.Sort(lats)
	at := func(q float64) float64 {
		i := int(q*float64(len(lats))+0.5) - 1
		i = min(max(i, 0), len(lats)-1)
		return float64(lats[i]) / 1e6
	}
	ls.MedianMs, ls.P99Ms, ls.MaxMs = at(0.5), at(0.99), float64(lats[len(lats)-1])/1e6
	return ls
}

// judge fills the delivery checks. target is the connections asked for,
// expected the deliveries promised; before/after bracket the run for the
// server's drop counters. A run passes when every connection came up and
// stayed up, something was delivered, nothing was duplicated, reordered or
// unexpected, and every missing delivery is accounted for by the server's
// own drop and loss counters (none may be missing when those cannot be
// read).
func judge(m *fleet.Merged, target, expected int64, before, after serverstat.Snapshot) *report.Checks {
	c := &report.Checks{
		Expected:   expected,
		Received:   int64(m.Counts.Received),
		Missing:    int64(m.Counts.Missing),
		Duplicates: int64(m.Counts.Dup),
		OutOfOrder: int64(m.Counts.OOO),
		Gaps:       int64(m.Counts.Gaps),
		Unknown:    m.Unknown,
		Drained:    m.Drained,
	}
	c.ServerDropped = metricDelta(before, after, serverstat.Dropped)
	c.ServerLost = metricDelta(before, after, serverstat.Lost)
	explained := max(c.ServerDropped, 0) + max(c.ServerLost, 0)
	switch {
	case m.Up < target:
		c.Verdict = fmt.Sprintf("only %d of %d connections came up", m.Up, target)
	case m.Lost.Total() > 0:
		c.Verdict = fmt.Sprintf("%d connections ended during the run", m.Lost.Total())
	case expected == 0:
		c.Verdict = "nothing was delivered to check"
	case c.Duplicates > 0 || c.OutOfOrder > 0:
		c.Verdict = fmt.Sprintf("%d duplicate and %d out-of-order deliveries", c.Duplicates, c.OutOfOrder)
	case c.Unknown > 0:
		c.Verdict = fmt.Sprintf("%d deliveries on topics not subscribed", c.Unknown)
	case c.Missing == 0 && c.Received == expected:
		c.Pass, c.Verdict = true, "every message exactly once, in seq order"
	case c.Missing == 0:
		c.Verdict = fmt.Sprintf("no seq missing, but %d received against %d expected by the API's recipients", c.Received, expected)
	case c.ServerDropped < 0:
		c.Verdict = fmt.Sprintf("%d missing and the server's drop counters could not be read", c.Missing)
	case float64(c.Missing) <= explained:
		c.Pass = true
		c.Verdict = fmt.Sprintf("%d missing, within the server's %.0f dropped + %.0f lost", c.Missing, c.ServerDropped, max(c.ServerLost, 0))
	default:
		c.Verdict = fmt.Sprintf("%d missing, more than the server's %.0f dropped + %.0f lost", c.Missing, c.ServerDropped, max(c.ServerLost, 0))
	}
	return c
}
