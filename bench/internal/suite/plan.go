package suite

import (
	"fmt"
	"strings"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/scenario"
)

// Scenario IDs of the standard suite, in the order they run against each
// server. connect runs first, on the freshly started server, so that its
// baseline is the idle server's.
const (
	ScConnect    = "connect"
	ScChurn      = "churn"
	ScBcastSmall = "broadcast-small"
	ScBcastLarge = "broadcast-large"
	ScThroughput = "throughput"
	ScSlow       = "slow"
	ScRecover    = "recover"
)

// Scenario is one step of the standard suite: a bench subcommand and its
// arguments (without the server's addresses, pid and output file, which
// the suite adds per run).
type Scenario struct {
	// ID names the step in tables and files.
	ID string `json:"id"`
	// Title describes it with its sizes.
	Title string `json:"title"`
	// Command is the bench subcommand.
	Command string `json:"command"`
	// Args are the subcommand's flags.
	Args []string `json:"args"`
	// WspushdArgs are added against wspushd servers only.
	WspushdArgs []string `json:"wspushd_args,omitempty"`
	// WspushdOnly runs the step against wspushd servers only.
	WspushdOnly bool `json:"wspushd_only,omitempty"`
	// ServerArgs, when set, give the step a server of its own, started
	// after the others with these arguments added (e.g. --history-size),
	// so that they do not change the other steps' numbers.
	ServerArgs []string `json:"server_args,omitempty"`
	// Seconds is the step's nominal busy time (a CPU profile's length).
	Seconds int `json:"seconds"`
	// Timeout bounds one run of the step.
	Timeout time.Duration `json:"timeout_ns"`
}

// Sizes are the knobs of the standard suite.
type Sizes struct {
	ConnectN       int
	ChurnRate      int
	ChurnDuration  time.Duration
	SmallN, SmallM int
	SmallRate      int
	LargeN, LargeM int
	LargeRate      int
	ThroughputN    int
	ThroughputDur  time.Duration
	Publishers     int
	SlowN, SlowK   int
	SlowRate       int
	SlowSize       int
	SlowDur        time.Duration
	RecoverN       int
	RecoverM       int
}

// FullSizes are the standard suite's sizes. Broadcasts are paced so that
// one fan-out is over before the next publish (a broadcast to 19,000 takes
// a few hundred ms on a 2-core VM); throughput publishes flat out. slow
// publishes 4 KiB at 10/s, which 5,000 readers keep up with, for 15 s: 600
// KiB per non-reader, more than the kernel's socket buffers and a 64-frame
// queue take, so the server has to hold or drop.
var FullSizes = Sizes{
	ConnectN: 19000, ChurnRate: 1000, ChurnDuration: 30 * time.Second,
	SmallN: 1000, SmallM: 50, SmallRate: 10,
	LargeN: 19000, LargeM: 20, LargeRate: 2,
	ThroughputN: 10000, ThroughputDur: 20 * time.Second, Publishers: 4,
	SlowN: 5000, SlowK: 100, SlowRate: 10, SlowSize: 4096, SlowDur: 15 * time.Second,
	RecoverN: 1000, RecoverM: 100,
}

// QuickSizes shrink everything for a fast check.
var QuickSizes = Sizes{
	ConnectN: 2000, ChurnRate: 200, ChurnDuration: 5 * time.Second,
	SmallN: 200, SmallM: 20, SmallRate: 20,
	LargeN: 2000, LargeM: 10, LargeRate: 5,
	ThroughputN: 1000, ThroughputDur: 5 * time.Second, Publishers: 4,
	SlowN: 500, SlowK: 10, SlowRate: 10, SlowSize: 4096, SlowDur: 5 * time.Second,
	RecoverN: 200, RecoverM: 50,
}

// Keepalives: the suite starts wspushd servers with --ping-interval
// WspushdPingInterval, and the connect step of every server reads idle
// memory a second time KeepaliveHold after the first reading (after its
// 2 s hold), which covers three of those ping intervals; the server's CPU
// over that hold per ping sent is the CPU per keepalive. Every server gets
// the same hold, so the conditions are equal.
const (
	WspushdPingInterval = 5 * time.Second
	KeepaliveHold       = 16 * time.Second
)

// WspushdLatencySample is the --latency-sample the suite gives wspushd
// servers (unless their arguments set one; wspushd's default is 100 ms):
// shorter than the broadcasts' pace (100 and 500 ms between publishes), so
// that every broadcast publish is sampled and the server's own latency
// histograms have as many fan-outs as the run has messages.
const WspushdLatencySample = 10 * time.Millisecond

// procsFor spreads more than ~9,000 connections over two client
// processes: each process, like the server, is capped at 20,000 open files.
// Churn uses it for its total cycles, so that they come from two source
// addresses (two sets of ephemeral ports).
func procsFor(n int) []string {
	if n > 9000 {
		return []string{"--procs", "2"}
	}
	return nil
}

func itoa(n int) string { return fmt.Sprint(n) }

// Plan returns the standard suite for sz.
func Plan(sz Sizes) []Scenario {
	dur := func(d time.Duration) string { return d.String() }
	secs := func(d time.Duration) int { return int(d / time.Second) }
	sc := []Scenario{
		{ID: ScConnect, Command: "connect", Title: fmt.Sprintf("connect %s, idle memory", thousands(sz.ConnectN)),
			Args: append([]string{"-n", itoa(sz.ConnectN), "--baseline", "--keepalive-hold", KeepaliveHold.String()}, procsFor(sz.ConnectN)...), Seconds: 5},
		{ID: ScChurn, Command: "churn", Title: fmt.Sprintf("churn %d/s for %s", sz.ChurnRate, dur(sz.ChurnDuration)),
			Args:        append([]string{"--rate", itoa(sz.ChurnRate), "--duration", dur(sz.ChurnDuration)}, procsFor(sz.ChurnRate*secs(sz.ChurnDuration))...),
			WspushdArgs: []string{"--server-gc"}, Seconds: secs(sz.ChurnDuration)},
		{ID: ScBcastSmall, Command: "broadcast", Title: fmt.Sprintf("broadcast 128 B to %s", thousands(sz.SmallN)),
			Args:    append([]string{"-n", itoa(sz.SmallN), "-m", itoa(sz.SmallM), "-s", "128", "--rate", itoa(sz.SmallRate)}, procsFor(sz.SmallN)...),
			Seconds: max(sz.SmallM/max(sz.SmallRate, 1), 1)},
		{ID: ScBcastLarge, Command: "broadcast", Title: fmt.Sprintf("broadcast 128 B to %s", thousands(sz.LargeN)),
			Args:    append([]string{"-n", itoa(sz.LargeN), "-m", itoa(sz.LargeM), "-s", "128", "--rate", itoa(sz.LargeRate)}, procsFor(sz.LargeN)...),
			Seconds: max(sz.LargeM/max(sz.LargeRate, 1), 1)},
		{ID: ScThroughput, Command: "throughput", Title: fmt.Sprintf("throughput to %s for %s", thousands(sz.ThroughputN), dur(sz.ThroughputDur)),
			Args: append([]string{"-n", itoa(sz.ThroughputN), "--duration", dur(sz.ThroughputDur), "--publishers", itoa(sz.Publishers), "-s", "128"},
				procsFor(sz.ThroughputN)...),
			Seconds: secs(sz.ThroughputDur)},
		{ID: ScSlow, Command: "slow", Title: fmt.Sprintf("slow: %d non-readers among %s", sz.SlowK, thousands(sz.SlowN)),
			Args: append([]string{"-n", itoa(sz.SlowN), "-k", itoa(sz.SlowK), "--rate", itoa(sz.SlowRate), "-s", itoa(sz.SlowSize),
				"--duration", dur(sz.SlowDur)}, procsFor(sz.SlowN+sz.SlowK)...),
			Seconds: secs(sz.SlowDur)},
		{ID: ScRecover, Command: "recover", Title: fmt.Sprintf("recover: %s clients resume after %d messages", thousands(sz.RecoverN), sz.RecoverM),
			Args:        []string{"-n", itoa(sz.RecoverN), "-m", itoa(sz.RecoverM), "-s", "128"},
			WspushdOnly: true, ServerArgs: []string{"--history-size", itoa(max(sz.RecoverM, 100))}, Seconds: 2},
	}
	for i := range sc {
		sc[i].Timeout = 10 * time.Minute
		sc[i].Args = append(sc[i].Args, "--timeout", "8m")
	}
	return sc
}

// thousands writes n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Extract turns one scenario's report into the suite's metrics (only
// those the report holds: a peer without /metrics has no heap numbers).
func Extract(id string, r *report.Report) map[string]float64 {
	m := map[string]float64{}
	if r == nil {
		return m
	}
	switch id {
	case ScConnect:
		if c := r.Clients; c != nil {
			m["connects_per_s"] = c.ConnectsPerSec
			m["failed"] = float64(c.Failed)
		}
		if h := r.Handshake; h != nil {
			m["handshake_p50_ms"], m["handshake_p99_ms"] = h.P50, h.P99
		}
		if s := r.Server; s != nil {
			extractIdle(m, s)
		}
	case ScChurn:
		if c := r.Churn; c != nil {
			m["cycles_per_s"], m["failed"] = c.CyclesPerSec, float64(c.Failed)
			// Settled means something only where /metrics counts connections.
			if s := r.Server; s != nil {
				if _, ok := s.Snapshots["before"].Metric("wspush_connections"); ok {
					m["settled"] = boolNum(c.Settled)
				}
			}
		}
		if s := r.Server; s != nil {
			b, a := s.Snapshots["before"], s.Snapshots["after"]
			if b.Proc != nil && a.Proc != nil {
				m["fds_delta"] = float64(a.Proc.FDs - b.Proc.FDs)
				m["rss_delta_bytes"] = float64(a.Proc.RSS - b.Proc.RSS)
			}
			for name, key := range map[string]string{"go_goroutines": "goroutines_delta", "go_memstats_heap_inuse_bytes": "heap_delta_bytes"} {
				bv, ok1 := b.Metric(name)
				av, ok2 := a.Metric(name)
				if ok1 && ok2 {
					m[key] = av - bv
				}
			}
		}
	case ScBcastSmall, ScBcastLarge, ScThroughput, ScSlow:
		if l := r.Latency; l != nil {
			m["latency_p50_ms"], m["latency_p99_ms"] = l.P50, l.P99
		}
		if c := r.Checks; c != nil {
			m["missing"] = float64(c.Missing)
			if c.ServerDropped >= 0 {
				m["server_dropped"] = c.ServerDropped
			}
		}
		if p := r.Publish; p != nil {
			m["publish_api_p99_ms"] = p.API.P99
			m["published_per_s"] = p.RatePerSec
		}
		extractCost(m, id, r.Cost)
	}
	switch id {
	case ScRecover:
		extractRecover(m, r)
	case ScBcastSmall, ScBcastLarge:
		extractBroadcast(m, r)
	case ScThroughput:
		if t := r.Throughput; t != nil {
			m["deliveries_per_s"] = t.DeliveriesPerSec
			if t.ServerCPUSeconds >= 0 {
				m["cpu_s_per_million"] = t.CPUPerMillion
			}
		}
	case ScSlow:
		var peak int64
		for _, p := range r.Series {
			peak = max(peak, p.ServerRSS)
		}
		if s := r.Server; s != nil {
			for _, snap := range s.Snapshots {
				if snap.Proc != nil {
					peak = max(peak, snap.Proc.RSS)
				}
			}
			if b := s.Snapshots["before"]; b.Proc != nil {
				m["rss_before_bytes"] = float64(b.Proc.RSS)
			}
		}
		if peak > 0 {
			m["rss_max_bytes"] = float64(peak)
			if b, ok := m["rss_before_bytes"]; ok {
				// What the slow clients cost, without what earlier
				// scenarios left in the process.
				m["rss_growth_bytes"] = float64(peak) - b
			}
		}
	}
	return m
}

// extractCost puts the bytes on the wire per delivery into m, and for the
// broadcasts the server's CPU per delivery (throughput has its own).
func extractCost(m map[string]float64, id string, c *report.DeliveryCost) {
	if c == nil || c.Deliveries == 0 || id == ScSlow {
		return
	}
	m["wire_bytes_per_delivery"] = c.WireBytesPerDelivery
	if c.ServerCPUSeconds >= 0 && id != ScThroughput {
		m["server_cpu_us_per_delivery"] = c.ServerCPUUsPerDelivery
	}
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// extractIdle puts the connect scenario's server figures into m: the
// baseline, idle memory per connection fresh and after keepalives, and
// the CPU per keepalive over the keepalive hold.
func extractIdle(m map[string]float64, s *report.Server) {
	for k, key := range map[string]string{
		"rss_bytes": "rss_per_conn_bytes", "heap_inuse_bytes": "heap_per_conn_bytes", "goroutines": "goroutines_per_conn",
		scenario.AfterKeepalives + "rss_bytes":        "rss_per_conn_keepalive_bytes",
		scenario.AfterKeepalives + "heap_inuse_bytes": "heap_per_conn_keepalive_bytes",
	} {
		if v, ok := s.PerConn[k]; ok {
			m[key] = v
		}
	}
	if b, ok := s.Snapshots["baseline"]; ok && b.Proc != nil {
		m["baseline_rss_bytes"] = float64(b.Proc.RSS)
		m["baseline_rss_anon_bytes"] = float64(b.Proc.RSSAnon)
	}
	us, pings, _, ok := scenario.KeepaliveCost(s.Snapshots[scenario.SnapPlateau], s.Snapshots[scenario.SnapKeepalive])
	if pings >= 0 {
		m["keepalive_pings"] = pings
	}
	if ok {
		m["cpu_us_per_keepalive"] = us
	}
}

// extractBroadcast puts a broadcast's last-subscriber figures and the
// server's own latency figures into m: the latter only when the server
// exports its latency histograms and sampled a publish in the run, the
// agreement (1 or 0) only when it was judged (else n/a).
func extractBroadcast(m map[string]float64, r *report.Report) {
	if l := r.LastSubscriber; l != nil && l.Messages > 0 {
		m["last_sub_median_ms"], m["last_sub_p99_ms"] = l.MedianMs, l.P99Ms
	}
	sl := r.ServerLatency
	if sl == nil || !sl.Exported || sl.Samples == 0 {
		return
	}
	m["server_delivery_p50_ms"], m["server_delivery_p99_ms"] = sl.DeliveryP50Ms, sl.DeliveryP99Ms
	m["server_fanout_p50_ms"], m["server_latency_samples"] = sl.FanoutP50Ms, float64(sl.Samples)
	switch a := sl.Agreement; a.Status {
	case report.AgreePass, report.AgreeFail:
		m["clients_minus_server_p50_ms"] = a.UnseenMs
		m["latency_agrees"] = boolNum(a.Status == report.AgreePass)
	}
}

// extractRecover puts the recover scenario's figures into m.
func extractRecover(m map[string]float64, r *report.Report) {
	if rc := r.Recover; rc != nil && rc.CaughtUp > 0 {
		m["catch_up_p50_ms"], m["catch_up_p99_ms"], m["last_caught_up_ms"] = rc.CatchUp.P50, rc.CatchUp.P99, rc.LastMs
		if rc.ServerCPUSeconds >= 0 {
			m["server_cpu_s"] = rc.ServerCPUSeconds
		}
	}
	if c := r.Checks; c != nil {
		m["missing"] = float64(c.Missing)
	}
}
