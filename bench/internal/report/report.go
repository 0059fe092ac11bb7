// Package report owns how a run's results are shown: the Report every
// scenario fills in, the table printed at the end, the JSON file, the
// self-contained HTML page with plots (go-echarts, with the ECharts library
// inlined), and the live progress line on a terminal.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

// Report is everything a run found. Sections that do not apply are nil.
type Report struct {
	// Scenario is the subcommand that ran.
	Scenario string `json:"scenario"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// Seconds is the run's wall time.
	Seconds float64 `json:"seconds"`
	// Params are the scenario's settings.
	Params any `json:"params"`
	// Clients is the client side's connection summary.
	Clients *Clients `json:"clients,omitempty"`
	// Handshake is the dial + upgrade time.
	Handshake *stats.Summary `json:"handshake,omitempty"`
	// Latency is the per-delivery latency (receive − publisher's send time).
	Latency *stats.Summary `json:"latency,omitempty"`
	// LastSubscriber is, per message, the time until its last subscriber got it.
	LastSubscriber *LastSub `json:"last_subscriber,omitempty"`
	// ServerLatency is the server's own latency figures (broadcast) and
	// their agreement with the clients'.
	ServerLatency *ServerLatency `json:"server_latency,omitempty"`
	// Checks are the delivery checks.
	Checks *Checks `json:"checks,omitempty"`
	// Publish is the publisher's side.
	Publish *Publish `json:"publish,omitempty"`
	// Throughput is the throughput scenario's figures.
	Throughput *Throughput `json:"throughput,omitempty"`
	// Cost is what each delivery cost: bytes on the wire, server CPU.
	Cost *DeliveryCost `json:"delivery_cost,omitempty"`
	// Churn is the churn scenario's figures.
	Churn *Churn `json:"churn,omitempty"`
	// Recover is the recover scenario's figures.
	Recover *Recover `json:"recover,omitempty"`
	// Server is what was measured of the server.
	Server *Server `json:"server,omitempty"`
	// Notes are warnings and explanations.
	Notes []string `json:"notes,omitempty"`
	// Series is the time series sampled during the run.
	Series []stats.Point `json:"series,omitempty"`
	// CDF is the delivery latency CDF (or the handshake CDF without deliveries).
	CDF []stats.CDFPoint `json:"latency_cdf,omitempty"`
	// CDFName says which histogram CDF comes from.
	CDFName string `json:"latency_cdf_of,omitempty"`
}

// Clients summarises the client connections.
type Clients struct {
	// Procs is the number of client processes.
	Procs int `json:"procs"`
	// Target is the number of connections asked for.
	Target int64 `json:"target"`
	// Up is connections up at the barrier; Failed dials that failed.
	Up int64 `json:"up"`
	// Failed counts failed dials and upgrades.
	Failed int64 `json:"failed"`
	// Failures are the failed dials by cause.
	Failures stats.Causes `json:"failures,omitempty"`
	// Lost are connections that ended on their own, by cause.
	Lost stats.Causes `json:"lost,omitempty"`
	// Slow is the number of connections that never read.
	Slow int64 `json:"slow,omitempty"`
	// ConnectSeconds is the dial phase's duration; ConnectsPerSec Up / it.
	ConnectSeconds float64 `json:"connect_seconds"`
	// ConnectsPerSec is connections up per second of the dial phase.
	ConnectsPerSec float64 `json:"connects_per_s"`
}

// LastSub summarises, over messages, the time until the last subscriber
// had each message.
type LastSub struct {
	// Messages is the number of messages tracked.
	Messages int64 `json:"messages"`
	// Complete counts messages that every expected subscriber received.
	Complete int64 `json:"complete"`
	// MedianMs, P99Ms and MaxMs are over messages.
	MedianMs float64 `json:"median_ms"`
	// P99Ms is the 99th percentile over messages.
	P99Ms float64 `json:"p99_ms"`
	// MaxMs is the worst message.
	MaxMs float64 `json:"max_ms"`
	// PerMessage lists every message tracked, in publish order.
	PerMessage []MessageLast `json:"per_message,omitempty"`
}

// MessageLast is one message's fan-out as its subscribers saw it.
type MessageLast struct {
	// Index is the message's place in publish order: message i went to
	// topic i mod the topics, as that topic's seq i/topics + 1.
	Index int `json:"i"`
	// Deliveries counts the subscribers that received it.
	Deliveries int64 `json:"deliveries"`
	// LastMs is the time from its publish until its last subscriber had
	// it, in milliseconds (0: nobody had it).
	LastMs float64 `json:"last_ms"`
}

// Checks are the delivery checks.
type Checks struct {
	// Expected is the deliveries the API's recipients counts promise.
	Expected int64 `json:"expected"`
	// Received counts deliveries received by reading clients.
	Received int64 `json:"received"`
	// Missing, Duplicates, OutOfOrder, Gaps: see check.Counts.
	Missing int64 `json:"missing"`
	// Duplicates counts deliveries received twice.
	Duplicates int64 `json:"duplicates"`
	// OutOfOrder counts deliveries that came after a higher seq.
	OutOfOrder int64 `json:"out_of_order"`
	// Gaps counts deliveries that skipped seqs.
	Gaps int64 `json:"gaps"`
	// Unknown counts deliveries on topics the connection had not asked for.
	Unknown int64 `json:"unknown_topic"`
	// ServerDropped and ServerLost are the deltas of
	// wspush_messages_dropped_total and wspush_messages_lost_total over the
	// run (-1: not measured).
	ServerDropped float64 `json:"server_dropped"`
	// ServerLost is the delta of wspush_messages_lost_total.
	ServerLost float64 `json:"server_lost"`
	// Drained tells whether every expected delivery arrived in time.
	Drained bool `json:"drained"`
	// Pass is the verdict; Verdict explains it.
	Pass bool `json:"pass"`
	// Verdict explains Pass.
	Verdict string `json:"verdict"`
}

// Publish is the publisher's side.
type Publish struct {
	// Sent counts publishes answered 200; Failed the others.
	Sent int64 `json:"sent"`
	// Failed counts publishes that failed.
	Failed int64 `json:"failed"`
	// Errors are the failures by cause.
	Errors stats.Causes `json:"errors,omitempty"`
	// Recipients sums the replies' recipients.
	Recipients int64 `json:"recipients"`
	// Seconds is the publishing time; RatePerSec Sent / Seconds.
	Seconds float64 `json:"seconds"`
	// RatePerSec is publishes per second.
	RatePerSec float64 `json:"rate_per_s"`
	// API is the publish round-trip time.
	API stats.Summary `json:"api"`
}

// Throughput is the throughput scenario's figures.
type Throughput struct {
	// Seconds is the publishing window plus the drain.
	Seconds float64 `json:"seconds"`
	// Deliveries received in that time; DeliveriesPerSec their rate.
	Deliveries int64 `json:"deliveries"`
	// DeliveriesPerSec is Deliveries / Seconds.
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	// ServerCPUSeconds is the server's utime+stime over the run (-1: unknown).
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	// CPUPerMillion is ServerCPUSeconds per million deliveries.
	CPUPerMillion float64 `json:"server_cpu_s_per_million_deliveries"`
}

// DeliveryCost is what the deliveries of a run cost, per delivery: the
// bytes the reading clients read from their sockets (frames as sent,
// compressed or not, with the pings and replies among them) and the
// server's CPU over the run.
type DeliveryCost struct {
	// Compression tells whether the clients negotiated permessage-deflate.
	Compression bool `json:"compression"`
	// Deliveries counts deliveries received.
	Deliveries int64 `json:"deliveries"`
	// WireBytes counts the bytes read from the sockets after the 101s.
	WireBytes int64 `json:"wire_bytes"`
	// MessageBytes counts the data messages' payloads, inflated.
	MessageBytes int64 `json:"message_bytes"`
	// Compressed counts the messages that came compressed.
	Compressed int64 `json:"compressed_messages"`
	// WireBytesPerDelivery is WireBytes / Deliveries.
	WireBytesPerDelivery float64 `json:"wire_bytes_per_delivery"`
	// MessageBytesPerDelivery is MessageBytes / Deliveries.
	MessageBytesPerDelivery float64 `json:"message_bytes_per_delivery"`
	// ServerCPUSeconds is the server's utime+stime between the before and
	// after snapshots (-1: unknown); ServerCPUUsPerDelivery per delivery,
	// in microseconds.
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	// ServerCPUUsPerDelivery is ServerCPUSeconds per delivery, in µs.
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery"`
}

// Churn is the churn scenario's figures.
type Churn struct {
	// Cycles completed and Failed.
	Cycles int64 `json:"cycles"`
	// Failed counts failed cycles.
	Failed int64 `json:"failed"`
	// CyclesPerSec is Cycles over the churn time.
	CyclesPerSec float64 `json:"cycles_per_s"`
	// Cycle is the full cycle time (dial, upgrade, hold, close handshake).
	Cycle stats.Summary `json:"cycle"`
	// Settled tells whether the server's connections returned to the
	// starting count before the after-measurement.
	Settled bool `json:"settled"`
}

// Recover is the recover scenario's figures: clients that resume with
// since after missing Messages publications.
type Recover struct {
	// Clients is the number of clients that resumed; Recovered how many
	// were answered recovered:true; CaughtUp how many got every missed seq.
	Clients int64 `json:"clients"`
	// Recovered counts clients answered recovered:true.
	Recovered int64 `json:"recovered"`
	// CaughtUp counts clients that got every missed message.
	CaughtUp int64 `json:"caught_up"`
	// Messages is the number of publications missed while away.
	Messages int `json:"messages"`
	// FromSeq is the position the clients resumed from (their last seq).
	FromSeq uint64 `json:"from_seq"`
	// CatchUp is, over clients, the time from the reconnect start until the
	// client had every missed message.
	CatchUp stats.Summary `json:"catch_up"`
	// LastMs is the time until the last client caught up.
	LastMs float64 `json:"last_ms"`
	// ServerCPUSeconds is the server's CPU over the catch-up (-1: unknown).
	ServerCPUSeconds float64 `json:"server_cpu_s"`
}

// Server is what was measured of the server.
type Server struct {
	// PID is the server's process id (0: unknown, no /proc numbers).
	PID int `json:"pid,omitempty"`
	// Snapshots by name: baseline, plateau, before, after, ...
	Snapshots map[string]serverstat.Snapshot `json:"snapshots,omitempty"`
	// PerConn holds per-connection figures (bytes, fds, goroutines ...).
	PerConn map[string]float64 `json:"per_conn,omitempty"`
	// Order lists Snapshots' names in the order taken.
	Order []string `json:"order,omitempty"`
}

// Add stores a snapshot under name.
func (s *Server) Add(name string, snap serverstat.Snapshot) {
	if s.Snapshots == nil {
		s.Snapshots = map[string]serverstat.Snapshot{}
	}
	s.Snapshots[name] = snap
	s.Order = append(s.Order, name)
}

// WriteJSON writes r to path, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// section is a titled list of rows for the table.
type section struct {
	title string
	rows  [][2]string
}

func (s *section) add(k, format string, a ...any) {
	s.rows = append(s.rows, [2]string{k, fmt.Sprintf(format, a...)})
}

func causes(c stats.Causes) string {
	if len(c) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range c.Keys() {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}

func summaryRow(s *section, name string, m stats.Summary) {
	if m.Count == 0 {
		s.add(name, "no samples")
		return
	}
	s.add(name, "p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (n=%d)", m.P50, m.P90, m.P99, m.P999, m.Max, m.Count)
}

// sections lays the report out for the table.
func (r *Report) sections() []section {
	var out []section
	if c := r.Clients; c != nil {
		s := section{title: "clients"}
		s.add("processes", "%d", c.Procs)
		s.add("connections up", "%d of %d (failed %d)", c.Up, c.Target, c.Failed)
		if c.Slow > 0 {
			s.add("of which never read", "%d", c.Slow)
		}
		s.add("dial failures", "%s", causes(c.Failures))
		s.add("lost after connect", "%s", causes(c.Lost))
		s.add("connect phase", "%.2f s, %.0f connects/s", c.ConnectSeconds, c.ConnectsPerSec)
		if r.Handshake != nil {
			summaryRow(&s, "handshake", *r.Handshake)
		}
		out = append(out, s)
	}
	if p := r.Publish; p != nil {
		s := section{title: "publisher"}
		s.add("published", "%d ok, %d failed (%s) in %.2f s = %.0f/s", p.Sent, p.Failed, causes(p.Errors), p.Seconds, p.RatePerSec)
		s.add("recipients (sum)", "%d", p.Recipients)
		summaryRow(&s, "API round trip", p.API)
		out = append(out, s)
	}
	if r.Latency != nil || r.LastSubscriber != nil {
		out = append(out, r.latencySection())
	}
	if c := r.Checks; c != nil {
		s := section{title: "checks"}
		s.add("deliveries", "%d received of %d expected", c.Received, c.Expected)
		s.add("missing / dup / out-of-order", "%d / %d / %d (gap events %d, unknown topic %d)", c.Missing, c.Duplicates, c.OutOfOrder, c.Gaps, c.Unknown)
		s.add("server dropped / lost", "%s / %s", metricDelta(c.ServerDropped), metricDelta(c.ServerLost))
		s.add("verdict", "%s: %s", passWord(c.Pass), c.Verdict)
		out = append(out, s)
	}
	if t := r.Throughput; t != nil {
		s := section{title: "throughput"}
		s.add("deliveries", "%d in %.2f s = %.0f/s", t.Deliveries, t.Seconds, t.DeliveriesPerSec)
		if t.ServerCPUSeconds >= 0 {
			s.add("server CPU", "%.2f s, %.3f s per million deliveries", t.ServerCPUSeconds, t.CPUPerMillion)
		}
		out = append(out, s)
	}
	if c := r.Cost; c != nil {
		out = append(out, c.section())
	}
	if c := r.Churn; c != nil {
		s := section{title: "churn"}
		s.add("cycles", "%d ok, %d failed, %.1f/s", c.Cycles, c.Failed, c.CyclesPerSec)
		summaryRow(&s, "cycle time", c.Cycle)
		s.add("server settled", "%v", c.Settled)
		out = append(out, s)
	}
	if rc := r.Recover; rc != nil {
		s := section{title: "recover"}
		s.add("clients", "%d resumed from seq %d, %d recovered:true, %d caught up on %d messages", rc.Clients, rc.FromSeq, rc.Recovered, rc.CaughtUp, rc.Messages)
		summaryRow(&s, "catch-up per client", rc.CatchUp)
		s.add("last client caught up", "%.3f ms", rc.LastMs)
		if rc.ServerCPUSeconds >= 0 {
			s.add("server CPU (catch-up)", "%.3f s", rc.ServerCPUSeconds)
		}
		out = append(out, s)
	}
	if sv := r.Server; sv != nil {
		s := section{title: "server"}
		if sv.PID > 0 {
			s.add("pid", "%d", sv.PID)
		}
		for _, name := range sv.Order {
			s.add(name, "%s", snapLine(sv.Snapshots[name]))
		}
		for _, k := range sortedKeys(sv.PerConn) {
			s.add("per connection: "+k, "%.2f", sv.PerConn[k])
		}
		out = append(out, s)
	}
	if len(r.Notes) > 0 {
		s := section{title: "notes"}
		for _, n := range r.Notes {
			s.add("-", "%s", n)
		}
		out = append(out, s)
	}
	return out
}

// latencySection is the clients' latency figures and, for a broadcast,
// the server's own.
func (r *Report) latencySection() section {
	s := section{title: "latency"}
	if r.Latency != nil {
		summaryRow(&s, "per delivery", *r.Latency)
	}
	if l := r.LastSubscriber; l != nil {
		s.add("last subscriber", "median %.3f  p99 %.3f  max %.3f ms over %d messages (%d complete)",
			l.MedianMs, l.P99Ms, l.MaxMs, l.Messages, l.Complete)
	}
	serverLatencyRows(&s, r.ServerLatency)
	return s
}

func passWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func metricDelta(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", v)
}

func snapLine(s serverstat.Snapshot) string {
	var parts []string
	if p := s.Proc; p != nil {
		parts = append(parts, fmt.Sprintf("rss %.1f MiB", float64(p.RSS)/(1<<20)),
			fmt.Sprintf("fds %d", p.FDs), fmt.Sprintf("threads %d", p.Threads), fmt.Sprintf("cpu %.2f s", p.CPU))
	}
	if v, ok := s.Metric(serverstat.HeapInuse); ok {
		parts = append(parts, fmt.Sprintf("heap_inuse %.1f MiB", v/(1<<20)))
	}
	if v, ok := s.Metric(serverstat.Goroutines); ok {
		parts = append(parts, fmt.Sprintf("goroutines %.0f", v))
	}
	if v, ok := s.Metric(serverstat.Connections); ok {
		parts = append(parts, fmt.Sprintf("connections %.0f", v))
	}
	for _, e := range s.Errors {
		parts = append(parts, "error: "+e)
	}
	if len(parts) == 0 {
		return "nothing measured"
	}
	return strings.Join(parts, ", ")
}

// WriteTable prints the report as aligned sections.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "== %s (%.2f s)\n", r.Scenario, r.Seconds)
	for _, s := range r.sections() {
		fmt.Fprintf(tw, "-- %s\n", s.title)
		for _, row := range s.rows {
			fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
		}
	}
	return tw.Flush()
}

// section lays the delivery cost out for the table.
func (c *DeliveryCost) section() section {
	s := section{title: "per delivery"}
	mode := "off"
	if c.Compression {
		mode = fmt.Sprintf("permessage-deflate negotiated, %d messages came compressed", c.Compressed)
	}
	s.add("compression", "%s", mode)
	s.add("bytes on the wire", "%.1f per delivery (%d over %d deliveries)", c.WireBytesPerDelivery, c.WireBytes, c.Deliveries)
	s.add("message bytes", "%.1f per delivery (inflated)", c.MessageBytesPerDelivery)
	if c.ServerCPUSeconds >= 0 {
		s.add("server CPU", "%.3f µs per delivery (%.3f s)", c.ServerCPUUsPerDelivery, c.ServerCPUSeconds)
	}
	return s
}
