package scenario

import (
	"slices"
	"testing"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

func TestJudge(t *testing.T) {
	snap := func(dropped, lost float64) serverstat.Snapshot {
		return serverstat.Snapshot{Metrics: map[string]float64{serverstat.Dropped: dropped, serverstat.Lost: lost}}
	}
	merged := func(up int64, lost stats.Causes, c check.Counts) *fleet.Merged {
		m := &fleet.Merged{}
		m.Up, m.Lost, m.Counts = up, lost, c
		return m
	}
	ok := check.Counts{Received: 100}
	for name, tc := range map[string]struct {
		m             *fleet.Merged
		target, want  int64
		before, after serverstat.Snapshot
		pass          bool
	}{
		"clean":               {merged(10, nil, ok), 10, 100, snap(0, 0), snap(0, 0), true},
		"dials failed":        {merged(9, nil, ok), 10, 100, snap(0, 0), snap(0, 0), false},
		"nothing up":          {merged(0, nil, check.Counts{}), 10, 0, snap(0, 0), snap(0, 0), false},
		"nothing published":   {merged(10, nil, check.Counts{}), 10, 0, snap(0, 0), snap(0, 0), false},
		"connection lost":     {merged(10, stats.Causes{"eof": 1}, ok), 10, 100, snap(0, 0), snap(0, 0), false},
		"duplicate":           {merged(10, nil, check.Counts{Received: 101, Dup: 1}), 10, 100, snap(0, 0), snap(0, 0), false},
		"out of order":        {merged(10, nil, check.Counts{Received: 100, OOO: 1}), 10, 100, snap(0, 0), snap(0, 0), false},
		"missing, no drops":   {merged(10, nil, check.Counts{Received: 98, Missing: 2}), 10, 100, snap(0, 0), snap(0, 0), false},
		"missing = dropped":   {merged(10, nil, check.Counts{Received: 98, Missing: 2}), 10, 100, snap(5, 0), snap(6, 1), true},
		"missing > dropped":   {merged(10, nil, check.Counts{Received: 97, Missing: 3}), 10, 100, snap(5, 0), snap(6, 1), false},
		"missing, no metrics": {merged(10, nil, check.Counts{Received: 98, Missing: 2}), 10, 100, serverstat.Snapshot{}, serverstat.Snapshot{}, false},
		"count mismatch":      {merged(10, nil, check.Counts{Received: 99}), 10, 100, snap(0, 0), snap(0, 0), false},
	} {
		c := judge(tc.m, tc.target, tc.want, tc.before, tc.after)
		if c.Pass != tc.pass {
			t.Errorf("%s: pass %v (%s), want %v", name, c.Pass, c.Verdict, tc.pass)
		}
	}
}

func TestLastSubscriber(t *testing.T) {
	m := &fleet.Merged{}
	m.TopicReaders = []int64{2}
	m.Msgs = check.Msgs{MaxLatNs: [][]int64{{1e6, 3e6, 2e6, 0}}, Count: [][]int64{{2, 2, 1, 0}}}
	ls := LastSubscriber(m, []uint64{3})
	if ls.Messages != 3 || ls.Complete != 2 || ls.MaxMs != 3 || ls.MedianMs != 2 {
		t.Fatalf("%+v", ls)
	}
	want := []report.MessageLast{{Index: 0, Deliveries: 2, LastMs: 1}, {Index: 1, Deliveries: 2, LastMs: 3}, {Index: 2, Deliveries: 1, LastMs: 2}}
	if !slices.Equal(ls.PerMessage, want) {
		t.Fatalf("per message %+v, want %+v", ls.PerMessage, want)
	}

	// Two topics: message i went to topic i%2 as seq i/2+1.
	m.TopicReaders = []int64{1, 1}
	m.Msgs = check.Msgs{MaxLatNs: [][]int64{{1e6, 2e6}, {5e6, 0}}, Count: [][]int64{{1, 1}, {1, 0}}}
	ls = LastSubscriber(m, []uint64{2, 2})
	want = []report.MessageLast{{Index: 0, Deliveries: 1, LastMs: 1}, {Index: 1, Deliveries: 1, LastMs: 5}, {Index: 2, Deliveries: 1, LastMs: 2}, {Index: 3}}
	if !slices.Equal(ls.PerMessage, want) {
		t.Fatalf("two topics: per message %+v, want %+v", ls.PerMessage, want)
	}
}
