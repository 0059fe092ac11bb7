package scale

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/wspush/wspush/bench/internal/report"
)

// The charts' IDs on the scale-report page.
const (
	// ChartMemory is memory per connection against N.
	ChartMemory = "scale_memory"
	// ChartBroadcast is the time from a broadcast to its last subscriber
	// against N.
	ChartBroadcast = "scale_broadcast"
	// ChartKeepalive is the CPU per keepalive ping during the hold against N.
	ChartKeepalive = "scale_keepalive"
)

// The charts' series names, so that tests and readers can find them.
const (
	// SeriesRSSGrowth is Cost.UserRSSPerConn: the nodes' RSS growth.
	SeriesRSSGrowth = "nodes' RSS growth"
	// SeriesRSSAllIn is Cost.UserRSSAllInPerConn: the nodes' whole RSS.
	SeriesRSSAllIn = "nodes' RSS all in"
	// SeriesPSSAllIn is Cost.UserPSSAllInPerConn: the nodes' whole PSS.
	SeriesPSSAllIn = "nodes' PSS all in"
	// SeriesKernel is Cost.KernelPerConn: Slab plus TCP memory growth.
	SeriesKernel = "kernel (Slab + TCP)"
	// SeriesBcastMedian is Broadcast.MedianMs: the median over broadcasts.
	SeriesBcastMedian = "last subscriber, median over broadcasts"
	// SeriesBcastMax is Broadcast.MaxMs: the slowest broadcast.
	SeriesBcastMax = "last subscriber, slowest broadcast"
	// SeriesBoxUsPerPing is Hold.BoxUsPerPing: the machine's busy CPU per ping.
	SeriesBoxUsPerPing = "machine µs per ping"
	// SeriesNodeUsPerPing is Hold.NodeUsPerPing: the nodes' CPU per ping.
	SeriesNodeUsPerPing = "nodes' µs per ping"
)

// connsAxis is the x axis of every chart of the page.
const connsAxis = "connections (N)"

// ReportConfig drives `bench scale-report`.
type ReportConfig struct {
	// Files are the `bench scale --json` results, in any order.
	Files []string
	// HTML is the page to write.
	HTML string
	// MD is the Markdown file to write (empty: the table goes to Out).
	MD string
	// Out receives the Markdown table when MD is empty (nil: stdout).
	Out io.Writer
}

// Register adds the flags of `bench scale-report` to fs; the results files
// are its arguments.
func (c *ReportConfig) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.HTML, "html", "", "write the charts against N, with the table, to `file` (required)")
	fs.StringVar(&c.MD, "out-md", "", "write the Markdown table to `file` instead of stdout")
}

// RunReport reads every results file and writes the page and the table:
// one point and one row per file, in ascending N. It fails, writing
// nothing, when a setting is missing or a file is missing, unreadable or
// not a `bench scale --json` result.
func RunReport(cfg ReportConfig) error {
	switch {
	case cfg.HTML == "":
		return fmt.Errorf("%w: --html is required", ErrConfig)
	case len(cfg.Files) == 0:
		return fmt.Errorf("%w: no results file (bench scale --json FILE) given", ErrConfig)
	}
	rs, err := readResults(cfg.Files)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeReportMarkdown(&md, rs)
	page, err := report.ChartsHTML("wspush bench: scale against N", md.String(), reportCharts(rs))
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.HTML, page, 0o644); err != nil {
		return err
	}
	if cfg.MD != "" {
		return os.WriteFile(cfg.MD, md.Bytes(), 0o644)
	}
	_, err = orStd(cfg.Out, os.Stdout).Write(md.Bytes())
	return err
}

// namedResult is one results file's Result, with the file's name.
type namedResult struct {
	file string
	*Result
}

// readResults reads every file and sorts the results by N (files with the
// same N keep their order).
func readResults(files []string) ([]namedResult, error) {
	out := make([]namedResult, 0, len(files))
	for _, f := range files {
		r, err := readResult(f)
		if err != nil {
			return nil, err
		}
		out = append(out, namedResult{file: f, Result: r})
	}
	slices.SortStableFunc(out, func(a, b namedResult) int { return a.Config.Conns - b.Config.Conns })
	return out, nil
}

// readResult reads one `bench scale --json` file.
func readResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResults, err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrResults, path, err)
	}
	if r.Config.Conns < 1 {
		return nil, fmt.Errorf("%w: %s: no config.conns: not a bench scale --json file", ErrResults, path)
	}
	return &r, nil
}

// reportCharts lays out the page's plots against N: memory per connection,
// the broadcasts' time to the last subscriber, CPU per keepalive ping.
// Points that were not measured are left out, and so are charts without
// a point.
func reportCharts(rs []namedResult) []report.Chart {
	var out []report.Chart
	for _, c := range []report.Chart{memoryChart(rs), broadcastChart(rs), keepaliveChart(rs)} {
		c.XName = connsAxis
		if slices.ContainsFunc(c.Series, func(s report.ChartSeries) bool { return len(s.Points) > 0 }) {
			out = append(out, c)
		}
	}
	return out
}

// memoryChart is Cost against N, for the runs that measured it (some
// connection up).
func memoryChart(rs []namedResult) report.Chart {
	cost := func(name string, f func(Cost) float64) report.ChartSeries {
		return seriesOf(name, rs, func(r namedResult) (float64, bool) { return f(r.Cost), r.Cost.Conns > 0 })
	}
	return report.Chart{ID: ChartMemory, Title: "memory per connection", YName: "bytes per connection",
		Subtitle: "after the hold, per connection up; RSS growth: the nodes' RSS less their baselines; all in: their whole RSS, and PSS\n" +
			"(shared pages counted once); kernel: /proc/meminfo Slab + /proc/net/sockstat TCP memory growth, both ends of each loopback connection",
		Series: []report.ChartSeries{
			cost(SeriesRSSGrowth, func(c Cost) float64 { return c.UserRSSPerConn }),
			cost(SeriesRSSAllIn, func(c Cost) float64 { return c.UserRSSAllInPerConn }),
			cost(SeriesPSSAllIn, func(c Cost) float64 { return c.UserPSSAllInPerConn }),
			cost(SeriesKernel, func(c Cost) float64 { return c.KernelPerConn }),
		}}
}

// broadcastChart is Broadcast's median and max against N, for the runs
// that got as far as the broadcasts.
func broadcastChart(rs []namedResult) report.Chart {
	bcast := func(name string, f func(*report.LastSub) float64) report.ChartSeries {
		return seriesOf(name, rs, func(r namedResult) (float64, bool) {
			if b := r.Broadcast; b != nil && b.Messages > 0 {
				return f(b), true
			}
			return 0, false
		})
	}
	return report.Chart{ID: ChartBroadcast, Title: "broadcast to the last subscriber", YName: "ms",
		Subtitle: "bench side: from a broadcast's publish until its last subscriber had it; median and max over the run's broadcasts",
		Series: []report.ChartSeries{
			bcast(SeriesBcastMedian, func(b *report.LastSub) float64 { return b.MedianMs }),
			bcast(SeriesBcastMax, func(b *report.LastSub) float64 { return b.MaxMs }),
		}}
}

// keepaliveChart is Hold's CPU per ping against N; a 0 (no ping counted,
// or the run ended before the hold) is left out.
func keepaliveChart(rs []namedResult) report.Chart {
	hold := func(name string, f func(Load) float64) report.ChartSeries {
		return seriesOf(name, rs, func(r namedResult) (float64, bool) { v := f(r.Hold); return v, v != 0 })
	}
	return report.Chart{ID: ChartKeepalive, Title: "keepalive CPU during the hold", YName: "µs per ping",
		Subtitle: "idle connections, nothing published: busy CPU over the hold / pings the nodes sent (pong read included);\n" +
			"machine: /proc/stat (every process and the kernel: both ends) less the processes outside the run; nodes: the nodes' own user+system CPU",
		Series: []report.ChartSeries{
			hold(SeriesBoxUsPerPing, func(l Load) float64 { return l.BoxUsPerPing }),
			hold(SeriesNodeUsPerPing, func(l Load) float64 { return l.NodeUsPerPing }),
		}}
}

// seriesOf is one line against N: a point (N, y(r)) for each result whose
// y was measured, in the results' order.
func seriesOf(name string, rs []namedResult, y func(namedResult) (float64, bool)) report.ChartSeries {
	s := report.ChartSeries{Name: name, Symbols: true}
	for _, r := range rs {
		if v, ok := y(r); ok {
			s.Points = append(s.Points, [2]float64{float64(r.Config.Conns), v})
		}
	}
	return s
}

// reportHead is the Markdown table's header row.
var reportHead = []string{
	"N", "nodes", "connected", "connect s (conns/s)", "growth B/conn", "RSS all-in B/conn", "PSS all-in B/conn", "kernel B/conn",
	"hold pings/s", "hold cores busy", "machine µs/ping", "bcast last median / max ms", "missing", "result",
}

// writeReportMarkdown writes one table row per result, then the problems
// of the runs that failed.
func writeReportMarkdown(w io.Writer, rs []namedResult) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(reportHead, " | "))
	seps := slices.Repeat([]string{"---:"}, len(reportHead))
	seps[len(seps)-1] = "---"
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range rs {
		fmt.Fprintf(w, "| %s |\n", strings.Join(reportRow(r.Result), " | "))
	}
	var failed []namedResult
	for _, r := range rs {
		if !r.Pass {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, r := range failed {
		p := strings.Join(r.Problems, "; ")
		if p == "" {
			p = "no problem recorded"
		}
		fmt.Fprintf(w, "- FAIL at N = %s (%s): %s\n", thousands(float64(r.Config.Conns)), r.file, mdCell(p))
	}
}

// reportRow is one result's cells, in reportHead's order; what the run
// did not measure is n/a.
func reportRow(r *Result) []string {
	na := func(measured bool, f string, a ...any) string {
		if !measured {
			return "n/a"
		}
		return fmt.Sprintf(f, a...)
	}
	c, h, b := r.Cost, r.Hold, r.Broadcast
	cost, held, bcast := c.Conns > 0, h.Seconds > 0, b != nil && b.Messages > 0
	result := "FAIL"
	if r.Pass {
		result = "PASS"
	}
	cells := []string{
		thousands(float64(r.Config.Conns)), fmt.Sprint(len(r.Nodes)), thousands(float64(r.Connected)),
		fmt.Sprintf("%.1f (%s)", r.ConnectSeconds, thousands(r.ConnectRate)),
		na(cost, "%.0f", c.UserRSSPerConn), na(cost, "%.0f", c.UserRSSAllInPerConn),
		na(cost, "%.0f", c.UserPSSAllInPerConn), na(cost, "%.0f", c.KernelPerConn),
		na(held, "%s", thousands(h.PingsPerSec)), na(held, "%.2f", h.BusyCores), na(h.BoxUsPerPing != 0, "%.1f", h.BoxUsPerPing),
	}
	if bcast {
		cells = append(cells, fmt.Sprintf("%.1f / %.1f", b.MedianMs, b.MaxMs))
	} else {
		cells = append(cells, "n/a")
	}
	return append(cells, fmt.Sprint(r.Counts.Missing), result)
}

// thousands prints v rounded, with thousands separators: 1234567 as 1,234,567.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", math.Abs(math.Round(v)))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if math.Round(v) < 0 {
		s = "-" + s
	}
	return s
}

// mdCell keeps text inside one Markdown line or table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
