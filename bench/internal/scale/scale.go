// Package scale owns `bench scale`: one host, one shared WebSocket port
// (wspushd --reuseport), K wspushd nodes joined by one Redis, and N
// clients in child processes dialing from many 127.0.0.0/8 source
// addresses. It checks and raises the kernel settings the run needs
// (sysctl.go), starts Redis and the nodes (nodes.go) and the clients
// (clients.go), holds the idle connections for a few ping intervals and
// measures what they cost in user and kernel memory (measure.go), publishes
// broadcasts and group messages checked exactly once and in order
// (broadcast.go), stops everything and prints one summary line (here).
// `bench scale-report` puts the --json results of several runs side by
// side against N: charts and a Markdown table (report.go).
package scale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/scenario"
	"github.com/wspush/wspush/bench/internal/stats"
)

// Config drives one scale run.
type Config struct {
	// Conns is N, the client connections.
	Conns int `json:"conns"`
	// Rate is connections per second over all clients (0: as fast as
	// DialConcurrency goes).
	Rate float64 `json:"rate"`
	// DialConcurrency is dials in flight at once over all clients.
	DialConcurrency int `json:"dial_concurrency"`
	// PingInterval is every node's --ping-interval.
	PingInterval time.Duration `json:"ping_interval_ns"`
	// Hold is how long the idle connections are held before the
	// measurement (0: three ping intervals).
	Hold time.Duration `json:"hold_ns"`
	// Broadcasts is the publishes to the common topic.
	Broadcasts int `json:"broadcasts"`
	// BroadcastEvery paces them.
	BroadcastEvery time.Duration `json:"broadcast_every_ns"`
	// Groups is the group topics; connection g joins group g mod Groups.
	Groups int `json:"groups"`
	// GroupPublishes is the publishes to group topics, round-robin.
	GroupPublishes int `json:"group_publishes"`
	// Size is each message's data size in bytes.
	Size int `json:"size"`
	// Wspushd is the wspushd binary.
	Wspushd string `json:"wspushd"`
	// Redis is the redis-server binary.
	Redis string `json:"redis_server"`
	// NodeFlags are passed on to every node.
	NodeFlags []string `json:"node_flags,omitempty"`
	// MaxConns is every node's --max-conns.
	MaxConns int `json:"max_conns"`
	// PerNode sizes the cluster: ceil(Conns/PerNode) nodes plus a spare.
	PerNode int `json:"per_node"`
	// PerProc is the most connections one client process holds.
	PerProc int `json:"per_proc"`
	// PerAddr is the most connections one source address carries.
	PerAddr int `json:"per_addr"`
	// SourceBase is the first client source address.
	SourceBase string `json:"source_base"`
	// ConnectTimeout bounds the connect phase.
	ConnectTimeout time.Duration `json:"connect_timeout_ns"`
	// Drain bounds the clients' wait for deliveries; Settle ends it after
	// that long without one.
	Drain time.Duration `json:"drain_ns"`
	// Settle ends the drain early without progress.
	Settle time.Duration `json:"settle_ns"`
	// Timeout bounds the whole run.
	Timeout time.Duration `json:"timeout_ns"`
	// JSON is the results file (empty: none).
	JSON string `json:"-"`
	// LogDir holds Redis's and the nodes' logs (empty: a new temp dir).
	LogDir string `json:"log_dir"`

	// Out gets the summary line, Err the progress (nil: stdout, stderr).
	Out io.Writer `json:"-"`
	// Err receives the progress lines.
	Err io.Writer `json:"-"`
	// Exe is the binary re-executed as client processes (empty: this one).
	Exe string `json:"-"`
	// SysctlDir replaces /proc/sys (tests); Root lets the run write it.
	SysctlDir string `json:"-"`
	// Root allows writing kernel settings (default: the effective uid is 0).
	Root *bool `json:"-"`
}

// Register adds the flags of `bench scale` to fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.IntVar(&c.Conns, "n", 20000, "client connections")
	fs.Float64Var(&c.Rate, "rate", 2000, "connections per second over all client processes (0: as fast as --dial-concurrency goes)")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", 256, "dials in flight at once over all client processes")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "every node's --ping-interval")
	fs.DurationVar(&c.Hold, "hold", 0, "hold the idle connections this long before measuring (0: 3 ping intervals)")
	fs.IntVar(&c.Broadcasts, "broadcasts", 3, "publishes to the topic every client subscribes to, one node's API each, round-robin")
	fs.DurationVar(&c.BroadcastEvery, "broadcast-every", 5*time.Second, "time between two broadcasts (long enough for one to reach every client before the next)")
	fs.IntVar(&c.Groups, "groups", 100, "group topics; client g also subscribes to group g mod groups")
	fs.IntVar(&c.GroupPublishes, "group-publishes", 100, "publishes to the group topics, round-robin over groups and nodes")
	fs.IntVar(&c.Size, "s", 128, "bytes of each message's data object")
	fs.StringVar(&c.Wspushd, "wspushd", "bin/wspushd", "wspushd `binary`")
	fs.StringVar(&c.Redis, "redis-server", "redis-server", "redis-server `binary` (scripts/deps.sh installs it)")
	fs.Func("node-flag", "pass a flag to every node, e.g. --node-flag=--send-queue=32 (repeatable)", func(s string) error {
		c.NodeFlags = append(c.NodeFlags, s)
		return nil
	})
	fs.IntVar(&c.MaxConns, "max-conns", 19400, "every node's --max-conns (below its 20,000 open files)")
	fs.IntVar(&c.PerNode, "per-node", 19000, "connections per node: ceil(n/per-node) nodes, plus one spare")
	fs.IntVar(&c.PerProc, "per-proc", 19000, "most connections per client process (its open-file limit less headroom)")
	fs.IntVar(&c.PerAddr, "per-addr", 4000, "most connections per client source address")
	fs.StringVar(&c.SourceBase, "source-base", "127.0.1.1", "first client source `address`; the others follow it in 127.0.0.0/8")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 30*time.Minute, "bound on the connect phase")
	fs.DurationVar(&c.Drain, "drain", 60*time.Second, "bound on the clients' wait for the deliveries")
	fs.DurationVar(&c.Settle, "settle", 15*time.Second, "end that wait after this long without a delivery")
	fs.DurationVar(&c.Timeout, "timeout", time.Hour, "bound on the whole run")
	fs.StringVar(&c.JSON, "json", "", "write every figure as JSON to `file`")
	fs.StringVar(&c.LogDir, "log-dir", "", "`dir` for the Redis and node logs (default: a new temp dir)")
}

// validate checks the settings and fills the defaults.
func (c *Config) validate() error {
	switch {
	case c.Conns < 1:
		return fmt.Errorf("%w: -n must be >= 1", ErrConfig)
	case c.PerNode < 1 || c.PerProc < 1 || c.PerAddr < 1:
		return fmt.Errorf("%w: --per-node, --per-proc and --per-addr must be >= 1", ErrConfig)
	case c.Broadcasts < 1 || c.Groups < 1 || c.GroupPublishes < 0:
		return fmt.Errorf("%w: --broadcasts and --groups must be >= 1, --group-publishes >= 0", ErrConfig)
	case c.PingInterval <= 0 && c.Hold <= 0:
		return fmt.Errorf("%w: --hold is required when --ping-interval is off", ErrConfig)
	}
	if _, err := os.Stat(c.Wspushd); err != nil {
		return fmt.Errorf("%w: --wspushd: %w", ErrConfig, err)
	}
	if c.Hold <= 0 {
		c.Hold = 3 * c.PingInterval
	}
	c.Out, c.Err = orStd(c.Out, os.Stdout), orStd(c.Err, os.Stderr)
	if c.LogDir == "" {
		dir, err := os.MkdirTemp("", "wspush-scale-")
		if err != nil {
			return err
		}
		c.LogDir = dir
	}
	return os.MkdirAll(c.LogDir, 0o755)
}

func orStd(w, std io.Writer) io.Writer {
	if w == nil {
		return std
	}
	return w
}

// Result is every figure of a run.
type Result struct {
	// Config is the settings.
	Config Config `json:"config"`
	// Nodes are the wspushd nodes; WS their shared address.
	Nodes []*Node `json:"nodes"`
	// WS is the shared WebSocket address.
	WS string `json:"ws"`
	// Clients is how the connections were spread.
	Clients clientPlan `json:"clients"`
	// Sysctls are the kernel settings checked.
	Sysctls []Sysctl `json:"sysctls"`
	// Connected and Failed are from the connect barrier.
	Connected int64 `json:"connected"`
	// Failed counts failed dials and upgrades.
	Failed int64 `json:"failed"`
	// ConnectSeconds is the connect phase; ConnectRate its connections/s.
	ConnectSeconds float64 `json:"connect_seconds"`
	// ConnectRate is Connected over ConnectSeconds.
	ConnectRate float64 `json:"connect_rate"`
	// Before and After are the nodes and the kernel before connecting and
	// after the hold; Cost their difference per connection.
	Before Sample `json:"before"`
	// After is taken at the end of the hold.
	After Sample `json:"after"`
	// Cost is per connection.
	Cost Cost `json:"cost"`
	// Hold is the CPU the idle connections cost during the hold.
	Hold Load `json:"hold_load"`
	// TCPConnect is the kernel's TCP counters over the connect phase and
	// the hold; TCPPublish over the publishes and the drain.
	TCPConnect TCPCounters `json:"tcp_connect_hold"`
	// TCPPublish is the counters from the end of the hold to the end.
	TCPPublish TCPCounters `json:"tcp_publish"`
	// ClosedDuringConnect counts connections closed (by the server, or
	// lost) while the others were still connecting.
	ClosedDuringConnect int64 `json:"closed_during_connect"`
	// ClosedDuringHold counts connections the server closed during the hold.
	ClosedDuringHold int64 `json:"closed_during_hold"`
	// Lost counts, by cause, connections that ended without the clients
	// closing them, over the whole run.
	Lost stats.Causes `json:"lost"`
	// Publish is what was published.
	Publish Published `json:"publish"`
	// Expected is the deliveries the clients expected; Counts the checks.
	Expected int64 `json:"expected"`
	// Counts are the exactly-once and order checks over every delivery.
	Counts check.Counts `json:"counts"`
	// Broadcast is the time from each broadcast to its last subscriber.
	Broadcast *report.LastSub `json:"broadcast_last"`
	// Delivery is the latency of every delivery (broadcasts and groups),
	// from the publish request's send to the client's read.
	Delivery stats.Summary `json:"delivery"`
	// DeliveriesPerSec is the broadcasts' deliveries over the time each
	// took to reach its last subscriber, summed over the broadcasts.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// Ended is the nodes after the clients closed with 1001.
	Ended Ended `json:"ended"`
	// Problems lists what failed the run.
	Problems []string `json:"problems,omitempty"`
	// Pass is the verdict.
	Pass bool `json:"pass"`
	// Seconds is the whole run.
	Seconds float64 `json:"seconds"`
}

// Summary is the last line of a run.
func (r *Result) Summary() string {
	verdict := "FAIL"
	if r.Pass {
		verdict = "PASS"
	}
	var p50, p99 float64
	if r.Broadcast != nil {
		p50, p99 = r.Broadcast.MedianMs, r.Broadcast.P99Ms
	}
	return fmt.Sprintf("scale conns=%d nodes=%d connected=%d missing=%d dup=%d disorder=%d user_rss_per_conn_b=%.0f user_rss_all_in_per_conn_b=%.0f user_pss_all_in_per_conn_b=%.0f kernel_per_conn_b=%.0f bcast_last_p50_ms=%.1f bcast_last_p99_ms=%.1f result=%s",
		r.Config.Conns, len(r.Nodes), r.Connected, r.Counts.Missing, r.Counts.Dup, r.Counts.OOO,
		r.Cost.UserRSSPerConn, r.Cost.UserRSSAllInPerConn, r.Cost.UserPSSAllInPerConn, r.Cost.KernelPerConn, p50, p99, verdict)
}

// Run carries out a scale run. The error is for a run that could not be
// carried out; a run that finished with failed checks returns a Result
// with Pass false. Everything started is stopped, and every kernel setting
// changed restored, before it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	res := &Result{Config: cfg, Lost: stats.Causes{}}
	err := cfg.run(ctx, res)
	res.Seconds = time.Since(start).Seconds()
	res.judge(err)
	if cfg.JSON != "" {
		if werr := writeJSON(cfg.JSON, res); werr != nil && err == nil {
			err = werr
		}
	}
	fmt.Fprintln(cfg.Out, res.Summary())
	return res, err
}

// run is Run's body: kernel settings, nodes, clients, hold, publishes;
// each step undone by a defer.
func (c *Config) run(ctx context.Context, res *Result) (err error) {
	nodes := ceilDiv(c.Conns, c.PerNode) + 1
	res.Clients = planClients(c.Conns, c.PerProc, c.PerAddr)
	root := os.Geteuid() == 0
	if c.Root != nil {
		root = *c.Root
	}
	sys := newSysctls(c.SysctlDir, root, c.Err)
	defer func() {
		err = errors.Join(err, sys.restore())
		res.Sysctls = sys.list
	}()
	if err := sys.needs(c.Conns, res.Clients.PerSource, c.DialConcurrency); err != nil {
		return err
	}
	if err := sys.raise(); err != nil {
		return err
	}
	fmt.Fprintf(c.Err, "scale: %d connections, %d nodes, %d client processes × %d source addresses; logs in %s\n",
		c.Conns, nodes, res.Clients.Procs, res.Clients.AddrsPerProc, c.LogDir)
	cl, err := c.startCluster(ctx, nodes)
	if err != nil {
		return err
	}
	res.Nodes, res.WS = cl.nodes, cl.ws
	defer func() { err = errors.Join(err, cl.stop()) }()
	return c.runClients(ctx, cl, res)
}

// runClients connects, holds, measures, publishes and collects the checks.
func (c *Config) runClients(ctx context.Context, cl *cluster, res *Result) error {
	res.Before = measure(ctx, cl.nodes)
	tcp0, tcpErr := readTCP()
	var b [4]byte
	rand.Read(b[:])
	topics := topicNames(hex.EncodeToString(b[:]), c.Groups)
	specs, err := c.clientSpecs(cl.ws, topics, res.Clients)
	if err != nil {
		return err
	}
	connStart := time.Now()
	fl, ready, err := c.connect(ctx, specs, c.Err)
	if fl != nil {
		defer fl.Close()
	}
	res.Connected, res.Failed = ready.Up, ready.Failed
	res.ConnectSeconds = time.Since(connStart).Seconds()
	res.ConnectRate = float64(ready.Up) / max(res.ConnectSeconds, 1e-9)
	if fl != nil {
		res.ClosedDuringConnect = fl.Stat().Lost
	}
	if err != nil {
		return err
	}
	holdStart := measure(ctx, cl.nodes)
	res.ClosedDuringHold, err = c.hold(ctx, fl, res.Connected)
	if err != nil {
		return err
	}
	res.After = measure(ctx, cl.nodes)
	res.Hold = loadOf(holdStart, res.After)
	fmt.Fprintf(c.Err, "scale: during the hold: %.0f pings/s, %.0f pongs/s; machine busy %.2f cores (nodes %.2f, processes not in the run %.2f); %.1f µs of node CPU and %.1f µs of the run's machine CPU per ping\n",
		res.Hold.PingsPerSec, res.Hold.PongsPerSec, res.Hold.BusyCores, res.Hold.NodeCores, res.Hold.OtherCores, res.Hold.NodeUsPerPing, res.Hold.BoxUsPerPing)
	res.Cost = costOf(res.Before, res.After, res.Connected)
	tcp1, err := readTCP()
	tcpErr = errors.Join(tcpErr, err)
	res.TCPConnect = tcp1.since(tcp0)
	fmt.Fprintf(c.Err, "scale: after the hold: %.0f B RSS (%.0f B anon, %.0f B heap) per connection in the nodes, %.0f B kernel (slab %.0f + tcp %.0f); all in: %.0f B RSS, %.0f B PSS; TCP since the start %+v\n",
		res.Cost.UserRSSPerConn, res.Cost.UserAnonPerConn, res.Cost.HeapPerConn, res.Cost.KernelPerConn, res.Cost.SlabPerConn, res.Cost.TCPMemPerConn,
		res.Cost.UserRSSAllInPerConn, res.Cost.UserPSSAllInPerConn, res.TCPConnect)
	pub, err := c.publishAll(ctx, cl.apis(), topics)
	res.Publish = pub
	if err != nil {
		return err
	}
	m, err := fl.Finish(ctx, fleet.Finish{LastSeq: pub.LastSeq})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClients, err)
	}
	res.collect(m, pub)
	tcp2, err := readTCP()
	if tcpErr = errors.Join(tcpErr, err); tcpErr != nil {
		fmt.Fprintf(c.Err, "scale: TCP counters not read, their figures are 0: %v\n", tcpErr)
	}
	res.TCPPublish = tcp2.since(tcp1)
	fmt.Fprintf(c.Err, "scale: TCP over the publishes %+v\n", res.TCPPublish)
	res.Ended = awaitClosed(ctx, cl.nodes, 30*time.Second)
	fmt.Fprintf(c.Err, "scale: the clients closed with 1001: the nodes got %d such close frames; %d connections left after %.1fs; over the run the nodes closed %d clients on the idle timeout and %d on the read timeout\n",
		res.Ended.Closes1001, res.Ended.Conns, res.Ended.Seconds, res.Ended.IdleCloses, res.Ended.ReadTimeoutCloses)
	fmt.Fprintf(c.Err, "scale: %d deliveries (%d expected): p50 %.1f ms, p99 %.1f ms; broadcast to the last subscriber p50 %.1f ms, max %.1f ms; %.0f deliveries/s\n",
		res.Counts.Received, res.Expected, res.Delivery.P50, res.Delivery.P99, res.Broadcast.MedianMs, res.Broadcast.MaxMs, res.DeliveriesPerSec)
	return nil
}

// hold keeps the idle connections for c.Hold and returns how many the
// server closed meanwhile.
func (c *Config) hold(ctx context.Context, fl fleet.Fleet, conns int64) (int64, error) {
	lost := fl.Stat().Lost
	fmt.Fprintf(c.Err, "scale: holding %d idle connections for %v\n", conns, c.Hold)
	// STAT lines come every second: wait for one more round at the end.
	if err := scenario.SleepCtx(ctx, c.Hold+1100*time.Millisecond); err != nil {
		return 0, err
	}
	return fl.Stat().Lost - lost, nil
}

// collect takes the clients' merged findings.
func (r *Result) collect(m *fleet.Merged, pub Published) {
	r.Expected, r.Counts = m.Expected, m.Counts
	r.Lost.Merge(m.Lost)
	r.Broadcast = broadcastLast(m, pub.LastSeq)
	r.Delivery = m.LatencyH.Summarize()
	var n int64
	var ms float64
	for _, pm := range r.Broadcast.PerMessage {
		n, ms = n+pm.Deliveries, ms+pm.LastMs
	}
	if ms > 0 {
		r.DeliveriesPerSec = float64(n) / (ms / 1e3)
	}
}

// judge sets Pass and lists the problems: an error, connections missing
// or closed, any delivery missing, duplicated or out of order.
func (r *Result) judge(err error) {
	add := func(ok bool, f string, a ...any) {
		if !ok {
			r.Problems = append(r.Problems, fmt.Sprintf(f, a...))
		}
	}
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
	}
	n := int64(r.Config.Conns)
	add(r.Connected == n && r.Failed == 0, "%d of %d connected, %d failed", r.Connected, n, r.Failed)
	add(r.ClosedDuringConnect == 0, "%d connections closed during the connect phase", r.ClosedDuringConnect)
	add(r.ClosedDuringHold == 0, "%d connections closed during the hold", r.ClosedDuringHold)
	add(r.Lost.Total() == 0, "%d connections closed by the other side: %v", r.Lost.Total(), r.Lost)
	add(r.Publish.Failed == 0, "%d publishes failed", r.Publish.Failed)
	add(r.Counts.Missing == 0 && r.Counts.Dup == 0 && r.Counts.OOO == 0,
		"deliveries: %d missing, %d duplicated, %d out of order", r.Counts.Missing, r.Counts.Dup, r.Counts.OOO)
	add(r.Expected > 0 && int64(r.Counts.Received) == r.Expected, "%d deliveries received, %d expected", r.Counts.Received, r.Expected)
	r.Pass = len(r.Problems) == 0
}

// writeJSON writes res to path.
func writeJSON(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
