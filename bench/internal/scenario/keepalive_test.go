package scenario

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/server"
	"github.com/wspush/wspush/wsconn"
)

// metricsServer serves page at /metrics.
func metricsServer(t *testing.T, page string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, page)
	}))
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

// TestCountersSumOverNodes: the keepalive counters come with every
// snapshot, summed over the nodes' pages; one missing from a page is left
// out, and a node without /metrics leaves no metrics at all.
func TestCountersSumOverNodes(t *testing.T) {
	counters := func(apis ...string) map[string]float64 {
		return serverstat.TakeAll(context.Background(), nil, apis).Metrics
	}
	a := metricsServer(t, "wspush_pings_sent_total{how=\"direct\"} 4\nwspush_pongs_received_total 4\n")
	b := metricsServer(t, "wspush_pings_sent_total{how=\"queued\"} 6\n")
	got := counters(a, b)
	if _, pongs := got[PongsReceived]; got[PingsSent] != 10 || pongs {
		t.Errorf("two nodes: %v, want pings = 10 and no pongs (missing on one page)", got)
	}
	none := metricsServer(t, "")
	got = counters(none)
	if _, pings := got[PingsSent]; pings {
		t.Errorf("a page without them: %v", got)
	}
	if _, pongs := got[PongsReceived]; pongs {
		t.Errorf("a page without them: %v", got)
	}
	nf := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(nf.Close)
	bad := strings.TrimPrefix(nf.URL, "http://")
	if got := counters(a, bad); got != nil {
		t.Errorf("a node without /metrics: %v", got)
	}
}

func TestKeepaliveCost(t *testing.T) {
	snap := func(cpu float64, pings float64, proc bool) serverstat.Snapshot {
		s := serverstat.Snapshot{Metrics: map[string]float64{PingsSent: pings, PongsReceived: pings - 1}}
		if proc {
			s.Proc = &serverstat.Proc{CPU: cpu}
		}
		return s
	}
	for _, tc := range []struct {
		name          string
		before, after serverstat.Snapshot
		us, pings     float64
		ok            bool
	}{
		{"20k pings in 0.2 s", snap(1.0, 1000, true), snap(1.2, 21000, true), 10, 20000, true},
		{"no ping", snap(1.0, 5, true), snap(1.1, 5, true), 0, 0, false},
		{"no proc", snap(1.0, 5, false), snap(1.1, 50, true), 0, 45, false},
		{"no counter", serverstat.Snapshot{Proc: &serverstat.Proc{}}, serverstat.Snapshot{Proc: &serverstat.Proc{CPU: 1}}, 0, -1, false},
	} {
		us, pings, _, ok := KeepaliveCost(tc.before, tc.after)
		if ok != tc.ok || pings != tc.pings || (ok && (us < tc.us-1e-6 || us > tc.us+1e-6)) {
			t.Errorf("%s: %v µs, %v pings, %v; want %v, %v, %v", tc.name, us, pings, ok, tc.us, tc.pings, tc.ok)
		}
	}
}

// TestConnectKeepaliveHold: a server pinging every 200 ms; after the
// keepalive hold the report has the second snapshot with the counters,
// the per-connection figures after keepalives and the CPU note.
func TestConnectKeepaliveHold(t *testing.T) {
	s := startServerWith(t, server.Config{Conn: wsconn.Config{PingInterval: 200 * time.Millisecond, SweepInterval: 20 * time.Millisecond}})
	const n = 30
	cc := ConnectConfig{Common: common(t, s, n, 1), Baseline: true, Hold: 50 * time.Millisecond, KeepaliveHold: 700 * time.Millisecond}
	rep, err := Connect(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	sv := rep.Server
	pl, ka := sv.Snapshots[SnapPlateau], sv.Snapshots[SnapKeepalive]
	if _, ok := ka.Metric(PingsSent); !ok {
		t.Fatalf("keepalive snapshot lacks %s: %+v", PingsSent, ka)
	}
	us, pings, pongs, ok := KeepaliveCost(pl, ka)
	if !ok || pings < n || pongs < n || us <= 0 {
		t.Errorf("keepalive cost %v µs over %v pings, %v pongs (%v)", us, pings, pongs, ok)
	}
	if v := sv.PerConn[AfterKeepalives+"wspush_connections"]; v != 1 {
		t.Errorf("after keepalives, wspush_connections per connection %v, want 1 (%+v)", v, sv.PerConn)
	}
	if _, ok := sv.PerConn[AfterKeepalives+"rss_bytes"]; !ok {
		t.Errorf("no RSS per connection after keepalives: %+v", sv.PerConn)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "server CPU per keepalive (ping+pong)") {
		t.Errorf("notes %q", rep.Notes)
	}
}
