package scenario

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

func TestJudgeAgreement(t *testing.T) {
	const bound = 10
	for _, tc := range []struct {
		name                            string
		client, server, lastSub, fanout float64
		want                            string
		why                             string
	}{
		{"server a little below the clients", 2, 1.5, 5, 4, report.AgreePass, ""},
		{"server above the clients within a bucket", 1, 1.9, 5, 4, report.AgreePass, ""},
		{"server exactly 2×", 1, 2, 4, 8, report.AgreePass, ""},
		{"server above 2×", 1, 2.1, 5, 4, report.AgreeFail, "more than 2×"},
		{"clients far above the server", 12, 1, 15, 14, report.AgreeFail, "11.000 ms above the server's"},
		{"unseen exactly the bound", 11, 1, 15, 14, report.AgreePass, ""},
		{"fan-out above 2× the last subscriber", 2, 1.5, 3, 7, report.AgreeFail, "fan-out p50 7.000 ms"},
		{"last subscriber far above the fan-out", 2, 1.5, 30, 4, report.AgreeFail, "last-subscriber median is 26.000 ms"},
		{"both wrong", 30, 1, 5, 40, report.AgreeFail, "; "},
	} {
		a := judgeAgreement(tc.client, tc.server, tc.lastSub, tc.fanout, bound)
		if a.Status != tc.want || !strings.Contains(a.Verdict, tc.why) {
			t.Errorf("%s: %s (%s), want %s containing %q", tc.name, a.Status, a.Verdict, tc.want, tc.why)
		}
		if a.UnseenMs != tc.client-tc.server || a.FanoutUnseenMs != tc.lastSub-tc.fanout || a.BoundMs != bound {
			t.Errorf("%s: differences %+v", tc.name, a)
		}
	}
}

// latSnap is a snapshot whose two histograms have the 10µs × 2^i bounds
// and hold n observations in bucket i (below 10µs × 2^i).
func latSnap(deliv, fan map[int]uint64) serverstat.Snapshot {
	mk := func(at map[int]uint64) serverstat.Hist {
		var h serverstat.Hist
		for i := range 22 {
			h.Count += at[i]
			h.Buckets = append(h.Buckets, serverstat.Bucket{UpperBound: 1e-5 * math.Pow(2, float64(i)), Count: h.Count})
		}
		return h
	}
	return serverstat.Snapshot{Hists: map[string]serverstat.Hist{
		serverstat.DeliveryLatency: mk(deliv), serverstat.FanoutSeconds: mk(fan),
	}}
}

func TestServerLatency(t *testing.T) {
	before := latSnap(map[int]uint64{3: 7}, map[int]uint64{5: 1})
	// 100 deliveries in [0.64, 1.28) ms, 10 publishes' fan-outs in [2.56, 5.12) ms.
	after := latSnap(map[int]uint64{3: 7, 7: 100}, map[int]uint64{5: 1, 9: 10})
	lat := &stats.Summary{Count: 1000, P50: 1.5, P99: 4}
	ls := &report.LastSub{Messages: 10, MedianMs: 5}
	for _, tc := range []struct {
		name          string
		before, after serverstat.Snapshot
		lat           *stats.Summary
		ls            *report.LastSub
		exported      bool
		status        string
	}{
		{"agrees", before, after, lat, ls, true, report.AgreePass},
		{"a peer: no histograms", serverstat.Snapshot{Metrics: map[string]float64{"x": 1}}, serverstat.Snapshot{}, lat, ls, false, report.AgreeNA},
		{"histograms in one snapshot only", before, serverstat.Snapshot{}, lat, ls, false, report.AgreeNA},
		{"nothing sampled", before, before, lat, ls, true, report.AgreeNA},
		{"no client latency", before, after, nil, ls, true, report.AgreeNA},
		{"clients far slower", before, after, &stats.Summary{Count: 1000, P50: 40}, ls, true, report.AgreeFail},
	} {
		got := serverLatency(tc.before, tc.after, tc.lat, tc.ls, 1000)
		if got.Exported != tc.exported || got.Agreement.Status != tc.status {
			t.Errorf("%s: exported %v status %s (%s), want %v %s", tc.name, got.Exported, got.Agreement.Status, got.Agreement.Verdict, tc.exported, tc.status)
		}
		if _, err := json.Marshal(got); err != nil { // no NaN may reach the JSON
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	got := serverLatency(before, after, lat, ls, 1000)
	if got.Samples != 10 || got.Deliveries != 100 || math.Abs(got.DeliveryP50Ms-0.96) > 1e-9 || math.Abs(got.FanoutP50Ms-3.84) > 1e-9 {
		t.Errorf("figures %+v", got)
	}
	if got.DeliveryP99Ms > 1.28 || got.FanoutP99Ms > 5.12 || got.Agreement.BoundWhy == "" {
		t.Errorf("p99s or bound %+v", got)
	}
}
