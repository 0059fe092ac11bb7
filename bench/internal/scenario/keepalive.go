package scenario

// Keepalive figures of the connect scenario: a second snapshot after
// --keepalive-hold (idle memory once the server's keepalive pings have
// gone round) and the server's CPU per keepalive over that hold.

import (
	"context"

	"github.com/wspush/wspush/bench/internal/serverstat"
)

// Names of the connect scenario's server snapshots and per-connection keys.
const (
	// SnapPlateau is the snapshot after --hold ("fresh").
	SnapPlateau = "plateau"
	// SnapKeepalive is the snapshot after a further --keepalive-hold.
	SnapKeepalive = "keepalive"
	// AfterKeepalives prefixes the per-connection figures (PerConn keys)
	// read from SnapKeepalive, e.g. "after_keepalives_rss_bytes".
	AfterKeepalives = "after_keepalives_"
)

// Keepalive counters of wspushd, read from /metrics into every snapshot
// (summed over their label sets and over nodes).
const (
	// PingsSent is wspush_pings_sent_total{how="carried"|"direct"|"queued"}.
	PingsSent = serverstat.PingsSent
	// PongsReceived is wspush_pongs_received_total.
	PongsReceived = serverstat.PongsReceived
)

// snapUnmarked is snap without a phase mark on the charts: the connect
// step's plateau and keepalive snapshots, whose keepalive counters
// (PingsSent, PongsReceived) are among the metrics serverstat selects.
func (r *run) snapUnmarked(ctx context.Context, name string) serverstat.Snapshot {
	s := serverstat.TakeAll(ctx, r.c.ServerPID, r.c.apiList())
	if r.rep.Server != nil {
		r.rep.Server.Add(name, s)
	}
	return s
}

// KeepaliveCost is the server's CPU per keepalive between two snapshots:
// CPU seconds (user+system, from /proc) over the increase of
// wspush_pings_sent_total, in microseconds, with the pings and pongs
// counted in between. ok is false when either snapshot lacks the process
// numbers or the counter, or no ping was sent.
func KeepaliveCost(before, after serverstat.Snapshot) (usPerPing, pings, pongs float64, ok bool) {
	pings = metricDelta(before, after, PingsSent)
	pongs = metricDelta(before, after, PongsReceived)
	if before.Proc == nil || after.Proc == nil || pings <= 0 {
		return 0, pings, pongs, false
	}
	return (after.Proc.CPU - before.Proc.CPU) / pings * 1e6, pings, pongs, true
}
