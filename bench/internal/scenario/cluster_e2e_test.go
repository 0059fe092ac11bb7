package scenario

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/server"
)

// startCluster runs n in-process nodes on one Redis (history kept for
// histSize publications per topic) and returns Common settings spanning
// every node.
func startCluster(t *testing.T, n, histSize, conns int) Common {
	t.Helper()
	rd := redistest.Start(t)
	var ws, api []string
	var c Common
	for i := 0; i < n; i++ {
		s := startServerWith(t, server.Config{Broker: rd.URL(), NodeName: "n" + strconv.Itoa(i), HistorySize: histSize})
		if i == 0 {
			c = common(t, s, conns, 1)
		}
		ws, api = append(ws, s.WSAddr().String()), append(api, s.APIAddr().String())
	}
	c.WS, c.API = strings.Join(ws, ","), strings.Join(api, ",")
	return c
}

// TestBroadcastCluster spreads 40 subscribers over two nodes and publishes
// through both: the seq is global, so every client gets 1..20 once, in
// order, and the expectation comes from the clients, not the per-node
// recipients.
func TestBroadcastCluster(t *testing.T) {
	cfg := BroadcastConfig{Common: startCluster(t, 2, 0, 40), Messages: 20, Size: 64, Publishers: 2}
	rep, err := Broadcast(context.Background(), cfg)
	assertExact(t, cfg, err, rep.Checks)
	if rep.Publish.Recipients != 400 {
		t.Errorf("recipients summed over both nodes: %d, want 400 (20 per node per publish)", rep.Publish.Recipients)
	}
	if v, ok := rep.Server.Snapshots["before"].Metric("wspush_connections"); !ok || v != 40 {
		t.Errorf("connections summed over the nodes' /metrics: %v %v", v, ok)
	}
}
