// Package scenario owns the load tool's scenarios — connect, broadcast,
// throughput, churn and slow — as functions from a Config to a
// report.Report: what to measure before, which clients to start (through
// package fleet), what to publish, what to measure after, and how to judge
// the counts. Flags map onto the Configs in cmd/bench.
package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/publish"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

// Common are the settings every scenario shares.
type Common struct {
	// WS is the server's WebSocket address, or a comma-separated list of
	// them (a cluster's nodes): connections are spread round-robin.
	WS string `json:"ws"`
	// API is the HTTP API address (publish, /metrics), or a comma-separated
	// list: publishes go round-robin, /metrics figures are summed.
	API string `json:"api"`
	// Conns is the number of (reading) client connections.
	Conns int `json:"conns"`
	// Topics is the number of topics; connection g subscribes to topic g%Topics.
	Topics int `json:"topics"`
	// Procs is the number of client processes (1: in this process).
	Procs int `json:"procs"`
	// AddrsPerProc is the number of source addresses per process.
	AddrsPerProc int `json:"addrs_per_proc"`
	// SourceBase is the first source address (process i starts at +i*AddrsPerProc).
	SourceBase string `json:"source_base"`
	// ServerPID enables the /proc measurements of the server; with several
	// pids (a cluster) the numbers are summed.
	ServerPID serverstat.PIDs `json:"server_pid"`
	// DialRate is connections per second (0: as fast as DialConcurrency goes).
	DialRate float64 `json:"dial_rate"`
	// DialConcurrency is dials in flight at once, over all processes.
	DialConcurrency int `json:"dial_concurrency"`
	// DialTimeout bounds one dial plus handshake.
	DialTimeout time.Duration `json:"dial_timeout_ns"`
	// Compression makes every client offer permessage-deflate; a server
	// that declines it fails the run.
	Compression bool `json:"compression"`
	// Pollers and Workers size each process's client engine.
	Pollers int `json:"pollers"`
	// Workers is the number of read workers per process (0: GOMAXPROCS).
	Workers int `json:"workers"`
	// Interval is the longest sampling interval of the time series: the
	// sampler starts at 20 ms and slows down as the run goes on (sampleStep).
	Interval time.Duration `json:"interval_ns"`
	// ConnectTimeout bounds the wait for every process to be READY.
	ConnectTimeout time.Duration `json:"connect_timeout_ns"`
	// Drain bounds the wait for deliveries after publishing; Settle ends it
	// after that long without a new delivery.
	Drain time.Duration `json:"drain_ns"`
	// Settle ends the drain wait after this long without a new delivery.
	Settle time.Duration `json:"settle_ns"`
	// Timeout bounds the whole run.
	Timeout time.Duration `json:"timeout_ns"`
	// JSON and HTML are output files (empty: none).
	JSON string `json:"-"`
	// HTML is the self-contained page's path.
	HTML string `json:"-"`

	// Out receives the table (nil: os.Stdout); Progress the live line.
	Out io.Writer `json:"-"`
	// Progress is the live progress line (nil: none).
	Progress *report.Progress `json:"-"`
	// Exe is the binary re-executed for child processes (empty: this one).
	Exe string `json:"-"`
}

// SetOutput sets where the table and the live progress line go; every
// scenario's config has it through its Common.
func (c *Common) SetOutput(out io.Writer, progress *report.Progress) {
	c.Out, c.Progress = out, progress
}

// Register adds the common flags to fs; -n (with default defConns) only
// when defConns >= 0.
func (c *Common) Register(fs *flag.FlagSet, defConns int) {
	fs.StringVar(&c.WS, "ws", "127.0.0.1:8080", "server WebSocket `address`, or a comma-separated list (a cluster's nodes: connections spread round-robin)")
	fs.StringVar(&c.API, "api", "127.0.0.1:8081", "server HTTP API `address`, or a comma-separated list (publishes round-robin; /metrics summed over all)")
	if defConns >= 0 {
		fs.IntVar(&c.Conns, "n", defConns, "client connections")
	}
	fs.IntVar(&c.Topics, "topics", 1, "topics; connection g subscribes to topic g mod topics")
	fs.IntVar(&c.Procs, "procs", 1, "client processes (each holds at most ~19,900 sockets); 1 runs in this process")
	fs.IntVar(&c.AddrsPerProc, "addrs-per-proc", 1, "source addresses per client process")
	fs.StringVar(&c.SourceBase, "source-base", "127.0.0.2", "first client source `address`; process i binds base+i*addrs-per-proc")
	fs.Var(&c.ServerPID, "server-pid", "server `pid` for /proc measurements (RSS, fds, threads, CPU); a comma-separated list sums them")
	fs.Float64Var(&c.DialRate, "dial-rate", 0, "connections per second over all processes (0: as fast as --dial-concurrency goes)")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", 64, "dials in flight at once over all processes")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", 10*time.Second, "bound on one dial plus upgrade")
	fs.BoolVar(&c.Compression, "compression", false, "clients offer permessage-deflate (client_max_window_bits) and inflate compressed messages; "+
		"the server must accept it with server_no_context_takeover, else the run fails")
	fs.IntVar(&c.Pollers, "pollers", 1, "epoll instances per client process")
	fs.IntVar(&c.Workers, "workers", 0, "read workers per client process (0: GOMAXPROCS)")
	fs.DurationVar(&c.Interval, "interval", time.Second, "longest sampling interval of the time series (short runs are sampled more finely, down to 20ms)")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 5*time.Minute, "bound on the connect phase")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "bound on the wait for deliveries after publishing")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "end the drain after this long without a new delivery")
	fs.DurationVar(&c.Timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.StringVar(&c.JSON, "json", "", "write all results as JSON to `file`")
	fs.StringVar(&c.HTML, "html", "", "write a self-contained HTML page with plots to `file`")
}

func (c *Common) validate() error {
	switch {
	case c.Conns < 0:
		return errors.New("-n must be >= 0")
	case c.Topics < 1:
		return errors.New("--topics must be >= 1")
	case c.Procs < 1:
		return errors.New("--procs must be >= 1")
	case c.WS == "":
		return errors.New("--ws is required")
	}
	for _, ws := range c.wsList() {
		if _, _, err := net.SplitHostPort(ws); err != nil {
			return fmt.Errorf("--ws: %w", err)
		}
	}
	for _, api := range c.apiList() {
		if _, _, err := net.SplitHostPort(api); err != nil {
			return fmt.Errorf("--api: %w", err)
		}
	}
	return nil
}

// wsList is --ws as a list.
func (c *Common) wsList() []string { return serverstat.SplitList(c.WS) }

// apiList is --api as a list.
func (c *Common) apiList() []string { return serverstat.SplitList(c.API) }

// expectedDeliveries is what the checks compare the deliveries with: the
// API's recipients summed, or with several API endpoints (a cluster, where
// each node's answer counts only its own subscribers) the clients' own
// expectation (readers × last seq of their topic).
func (c *Common) expectedDeliveries(r *run, m *fleet.Merged, recipients int64) int64 {
	if len(c.apiList()) <= 1 {
		return recipients
	}
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(
		"%d API endpoints: each node's recipients count only its own subscribers, so deliveries are checked against the clients' expectation (%d), not the recipients' sum (%d)",
		len(c.apiList()), m.Expected, recipients))
	return m.Expected
}

// topicNames returns n fresh topic names for this run, so that seqs start
// at 1 whatever ran before on the server.
func topicNames(n int) []string {
	var b [4]byte
	rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	names := make([]string, n)
	for i := range names {
		names[i] = "bench." + run + "." + strconv.Itoa(i)
	}
	return names
}

// baseSpec is the fleet.Spec shared by the scenarios.
func (c *Common) baseSpec(mode string, topics []string) fleet.Spec {
	return fleet.Spec{
		Mode: mode, WS: c.WS, Topics: topics, Conns: c.Conns, Compression: c.Compression,
		DialRate: c.DialRate, DialConcurrency: c.DialConcurrency, DialTimeout: c.DialTimeout,
		Pollers: c.Pollers, Workers: c.Workers, StatEvery: c.statEvery(),
		Drain: c.Drain, Settle: c.Settle, MaxLife: c.Timeout + time.Minute,
	}
}

// startFleet splits spec over the processes and starts them.
func (c *Common) startFleet(ctx context.Context, spec fleet.Spec) (fleet.Fleet, error) {
	base := net.ParseIP(c.SourceBase)
	if base == nil {
		return nil, fmt.Errorf("--source-base %q is not an IP address", c.SourceBase)
	}
	specs, err := fleet.Split(spec, c.Procs, c.AddrsPerProc, base)
	if err != nil {
		return nil, err
	}
	return fleet.Start(ctx, specs, c.Procs == 1, c.Exe)
}

// The sampler's pace: every minSampleStep at first, then about
// samplesPerRun points over any stretch of the run (the interval grows
// with the time elapsed), never slower than Common.Interval. So a run of
// under a second still gets dozens of points and a long one about one a
// second.
const (
	minSampleStep = 20 * time.Millisecond
	samplesPerRun = 50
	progressStep  = 200 * time.Millisecond
)

// noConnOverride tells mark to keep the clients' live connection count.
const noConnOverride = -1

// sampleStep is the sampler's interval at elapsed into a run.
func sampleStep(elapsed, limit time.Duration) time.Duration {
	if limit <= 0 {
		limit = time.Second
	}
	return min(limit, max(minSampleStep, elapsed/samplesPerRun))
}

// statEvery is how often the clients report their counters: twice per
// shortest sampling interval, so that a sample is at most that late.
func (c *Common) statEvery() time.Duration {
	limit := c.Interval
	if limit <= 0 {
		limit = time.Second
	}
	return max(min(limit, minSampleStep)/2, time.Millisecond)
}

// run is one scenario run in progress: its report, sampler and clock.
type run struct {
	c      *Common
	rep    *report.Report
	start  time.Time
	series stats.Series
	pub    publish.Progress

	mu    sync.Mutex
	fl    fleet.Fleet // set once the fleet is started; guarded by mu
	stop  chan struct{}
	wg    sync.WaitGroup
	label string

	pointMu      sync.Mutex // serialises points, so they come in time order
	lastProgress time.Time  // guarded by pointMu
	// knownUp, until knownUntil, is a connection count a mark was given
	// that the clients' live count may not show yet; guarded by pointMu.
	knownUp    int64
	knownUntil time.Time
}

func newRun(c *Common, name string, params any) *run {
	r := &run{c: c, start: time.Now(), stop: make(chan struct{}), label: name}
	r.rep = &report.Report{Scenario: name, Started: r.start, Params: params}
	if len(c.ServerPID) > 0 || c.API != "" {
		r.rep.Server = &report.Server{PID: c.ServerPID.First()}
	}
	r.wg.Add(1)
	go r.sample()
	return r
}

func (r *run) setFleet(f fleet.Fleet) {
	r.mu.Lock()
	r.fl = f
	r.mu.Unlock()
}

// sample appends a point at the pace of sampleStep until the run stops,
// and one last point then.
func (r *run) sample() {
	defer r.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			r.point("", noConnOverride)
			return
		case <-t.C:
			r.point("", noConnOverride)
			t.Reset(sampleStep(time.Since(r.start), r.c.Interval))
		}
	}
}

// mark appends a point at a phase boundary, named phase. conns >= 0
// replaces the clients' live count, which can be a few milliseconds late,
// by one the caller knows (the barrier's connections up).
func (r *run) mark(phase string, conns int64) {
	r.point(phase, conns)
}

// point appends a point (see mark for phase and conns) and updates the
// progress line.
func (r *run) point(phase string, conns int64) {
	r.pointMu.Lock()
	defer r.pointMu.Unlock()
	r.mu.Lock()
	fl := r.fl
	r.mu.Unlock()
	p := stats.Point{T: time.Since(r.start).Seconds(), Phase: phase, Published: r.pub.Sent.Load()}
	if fl != nil {
		st := fl.Stat()
		p.Conns, p.Deliveries, p.Cycles = st.Up, st.Deliveries, st.Cycles
		p.Errors = st.Failed + st.Lost
	}
	p.Conns = r.connsFor(p.Conns, conns)
	p.Errors += r.pub.Failed.Load()
	if len(r.c.ServerPID) > 0 {
		if pr, err := serverstat.ReadProcs(r.c.ServerPID); err == nil {
			p.ServerRSS, p.ServerCPU = pr.RSS, pr.CPU
		}
	}
	r.series.Add(p)
	p, _ = r.series.Last() // with its Rate
	if now := time.Now(); now.Sub(r.lastProgress) >= progressStep {
		r.lastProgress = now
		r.progress(p)
	}
}

// connsFor is the connection count of a point: given (a mark's known
// count, remembered for a few of the clients' report intervals) or live,
// unless the live count has not caught up with a recent known one yet.
// Call with pointMu held.
func (r *run) connsFor(live, given int64) int64 {
	now := time.Now()
	if given >= 0 {
		r.knownUp, r.knownUntil = given, now.Add(3*r.c.statEvery())
		return given
	}
	if now.Before(r.knownUntil) && live < r.knownUp {
		return r.knownUp
	}
	r.knownUntil = time.Time{}
	return live
}

// progress rewrites the live line with p.
func (r *run) progress(p stats.Point) {
	line := fmt.Sprintf("%s %5.1fs  conns %d  deliveries %d (%.0f/s)  published %d  errors %d",
		r.label, p.T, p.Conns, p.Deliveries, p.Rate, p.Published, p.Errors)
	if p.Cycles > 0 {
		line += fmt.Sprintf("  cycles %d", p.Cycles)
	}
	r.c.Progress.Update("%s", line)
}

// snap measures the server and stores the snapshot under name.
func (r *run) snap(ctx context.Context, name string) serverstat.Snapshot {
	s := serverstat.TakeAll(ctx, r.c.ServerPID, r.c.apiList())
	r.mark(name, noConnOverride)
	if r.rep.Server != nil {
		r.rep.Server.Add(name, s)
	}
	return s
}

// finish stops the sampler, closes the fleet, fills the series and writes
// the outputs. After a failure that left no client results (runErr set and
// no Clients section) nothing is written.
func (r *run) finish(runErr error) (*report.Report, error) {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
	r.mu.Lock()
	fl := r.fl
	r.mu.Unlock()
	if fl != nil {
		fl.Close()
	}
	r.c.Progress.Done()
	r.rep.Seconds = time.Since(r.start).Seconds()
	r.rep.Series = r.series.Points()
	if runErr != nil && r.rep.Clients == nil {
		return r.rep, runErr
	}
	errs := []error{runErr}
	out := r.c.Out
	if out == nil {
		out = os.Stdout
	}
	if err := r.rep.WriteTable(out); err != nil {
		errs = append(errs, err)
	}
	if r.c.JSON != "" {
		errs = append(errs, r.rep.WriteJSON(r.c.JSON))
	}
	if r.c.HTML != "" {
		errs = append(errs, r.rep.WriteHTML(r.c.HTML))
	}
	return r.rep, errors.Join(errs...)
}

// rateNote notes a publisher that fell behind the requested rate.
func (r *run) rateNote(want float64) {
	if p := r.rep.Publish; p != nil && want > 0 && p.RatePerSec < 0.9*want {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(
			"the publishers reached %.0f of the %.0f publishes/s asked for: each waits for its API reply (raise --publishers)", p.RatePerSec, want))
	}
}

// clients fills the report's client summary from merged results.
func (r *run) clients(m *fleet.Merged, target, slow int64) {
	c := &report.Clients{
		Procs: r.c.Procs, Target: target, Up: m.Up, Failed: m.Failed,
		Failures: m.Failures, Lost: m.Lost, Slow: slow,
	}
	if m.ConnectEndNs > m.ConnectStartNs {
		c.ConnectSeconds = float64(m.ConnectEndNs-m.ConnectStartNs) / 1e9
		c.ConnectsPerSec = float64(m.Up) / c.ConnectSeconds
	}
	r.rep.Clients = c
	if m.HandshakeH.Count() > 0 {
		h := m.HandshakeH.Summarize()
		r.rep.Handshake = &h
	}
	if m.LatencyH.Count() > 0 {
		l := m.LatencyH.Summarize()
		r.rep.Latency = &l
		r.rep.CDF, r.rep.CDFName = m.LatencyH.CDF(400), "delivery latency"
	} else if m.HandshakeH.Count() > 0 {
		r.rep.CDF, r.rep.CDFName = m.HandshakeH.CDF(400), "handshake"
	}
}

// cost fills the report's per-delivery section from merged results and
// the server's snapshots before and after the deliveries.
func (r *run) cost(m *fleet.Merged, before, after serverstat.Snapshot) {
	c := &report.DeliveryCost{
		Compression: r.c.Compression, Deliveries: int64(m.Counts.Received),
		WireBytes: m.WireBytes, MessageBytes: m.MessageBytes, Compressed: m.Inflated, ServerCPUSeconds: -1,
	}
	if before.Proc != nil && after.Proc != nil {
		c.ServerCPUSeconds = after.Proc.CPU - before.Proc.CPU
	}
	if c.Deliveries > 0 {
		n := float64(c.Deliveries)
		c.WireBytesPerDelivery, c.MessageBytesPerDelivery = float64(c.WireBytes)/n, float64(c.MessageBytes)/n
		if c.ServerCPUSeconds >= 0 {
			c.ServerCPUUsPerDelivery = c.ServerCPUSeconds / n * 1e6
		}
	}
	r.rep.Cost = c
	if c.Compression && c.Deliveries > 0 && c.Compressed == 0 {
		r.rep.Notes = append(r.rep.Notes, "the clients negotiated permessage-deflate but no message came compressed "+
			"(under the server's minimum size, or not smaller compressed?)")
	}
}

// payloadFlag registers --payload on fs into p.
func payloadFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "payload", "pad", `data objects published: pad ({"t":…,"p":"xxx…"}, compresses to almost nothing) or json `+
		`(market-data-like quotes with repeating keys and varying numbers, deterministic per message; compresses 2-4×), each of -s bytes`)
}

// SleepCtx waits d or until ctx ends.
func SleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// metricDelta returns after-before of a metric, or -1 when either is missing.
func metricDelta(before, after serverstat.Snapshot, name string) float64 {
	b, ok1 := before.Metric(name)
	a, ok2 := after.Metric(name)
	if !ok1 || !ok2 {
		return -1
	}
	return a - b
}
