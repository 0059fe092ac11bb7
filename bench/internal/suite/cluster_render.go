package suite

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// ClusterMetrics are the rows of the cluster comparison, in order.
var ClusterMetrics = []MetricDef{
	{ScBcastLarge, "latency_p50_ms", "broadcast: per delivery p50", UnitMs, Lower, true},
	{ScBcastLarge, "latency_p99_ms", "broadcast: per delivery p99", UnitMs, Lower, true},
	{ScBcastLarge, "last_sub_median_ms", "broadcast: last subscriber median", UnitMs, Lower, true},
	{ScBcastLarge, "last_sub_p99_ms", "broadcast: last subscriber p99", UnitMs, Lower, true},
	{ScBcastLarge, "missing", "broadcast: missing deliveries", UnitCount, Lower, false},
	{ScBcastLarge, "redis_cpu_s", "broadcast: Redis CPU over the run", UnitSec, Lower, false},
	{ScThroughput, "deliveries_per_s", "throughput: deliveries/s", UnitRate, Higher, true},
	{ScThroughput, "latency_p99_ms", "throughput: per delivery p99 under load", UnitMs, Lower, false},
	{ScThroughput, "cpu_s_per_million", "throughput: wspushd CPU s per million deliveries (sum of nodes)", UnitPerM, Lower, true},
	{ScThroughput, "redis_cpu_s_per_million", "throughput: Redis CPU s per million deliveries", UnitPerM, Lower, false},
	{ScThroughput, "missing", "throughput: missing deliveries", UnitCount, Lower, false},
}

// ClusterRow is one metric of the comparison.
type ClusterRow struct {
	// Metric is the definition.
	Metric MetricDef `json:"metric"`
	// Cluster and One are the medians over rounds (NaN: none, left out of
	// the JSON as null).
	Cluster *Stat `json:"cluster,omitempty"`
	// One is the one node's stat.
	One *Stat `json:"one_node,omitempty"`
	// Ratio is cluster / one node (0: not computable).
	Ratio float64 `json:"ratio,omitempty"`
}

// summarize fills the medians and the rows.
func (r *ClusterResults) summarize() {
	r.Table = Aggregate(r.Runs)
	r.Rows = nil
	for _, d := range ClusterMetrics {
		row := ClusterRow{Metric: d}
		row.Cluster, _ = r.Table.Get(SetupCluster, d.ID())
		row.One, _ = r.Table.Get(SetupOne, d.ID())
		if row.Cluster != nil && row.One != nil && row.One.Median != 0 {
			if q := row.Cluster.Median / row.One.Median; !math.IsNaN(q) && !math.IsInf(q, 0) {
				row.Ratio = q
			}
		}
		r.Rows = append(r.Rows, row)
	}
}

// cells are one row's texts: label, cluster, one node, ratio.
func (row ClusterRow) cells() []string {
	stat := func(s *Stat) string {
		if s == nil {
			return "–"
		}
		t := Format(row.Metric, s.Median)
		if len(s.Values) > 1 && s.Min != s.Max {
			t += fmt.Sprintf(" (%s – %s)", Format(row.Metric, s.Min), Format(row.Metric, s.Max))
		}
		return t
	}
	ratio := "–"
	if row.Ratio != 0 {
		ratio = fmt.Sprintf("%.2f×", row.Ratio)
	}
	return []string{row.Metric.Label, stat(row.Cluster), stat(row.One), ratio}
}

// checkLine counts passed checks per setup.
func (r *ClusterResults) checkLine() string {
	var parts []string
	for _, setup := range []string{SetupCluster, SetupOne} {
		runs, pass := 0, 0
		for _, x := range r.Runs {
			if x.Server == setup && x.Pass != nil {
				runs++
				if *x.Pass {
					pass++
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d", setup, pass, runs))
	}
	return "delivery checks passed: " + strings.Join(parts, ", ")
}

// problems lists failed runs and checks.
func (r *ClusterResults) problems() []string {
	var out []string
	for _, s := range r.ServerRuns {
		if s.Error != "" {
			out = append(out, fmt.Sprintf("round %d %s: %s", s.Round, s.Server, s.Error))
		}
	}
	for _, x := range r.Runs {
		if x.Error != "" {
			out = append(out, fmt.Sprintf("round %d %s %s: %s", x.Round, x.Server, x.Scenario, x.Error))
		} else if x.Pass != nil && !*x.Pass {
			out = append(out, fmt.Sprintf("round %d %s %s: checks failed: %s", x.Round, x.Server, x.Scenario, x.Verdict))
		}
	}
	return out
}

func (r *ClusterResults) header() []string {
	return []string{"metric", fmt.Sprintf("cluster (%d nodes + Redis)", r.Nodes), "one node", "cluster / one node"}
}

// WriteClusterTerminal prints the comparison as an aligned table.
func WriteClusterTerminal(w io.Writer, r *ClusterResults) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "== cluster comparison: medians of %d rounds\n", r.Rounds)
	fmt.Fprintln(tw, strings.Join(r.header(), "\t"))
	for _, row := range r.Rows {
		fmt.Fprintln(tw, strings.Join(row.cells(), "\t"))
	}
	fmt.Fprintln(tw, r.checkLine())
	for _, p := range r.problems() {
		fmt.Fprintln(tw, "problem: "+p)
	}
	return tw.Flush()
}

// WriteClusterMarkdown writes the comparison as Markdown.
func WriteClusterMarkdown(w io.Writer, r *ClusterResults) error {
	m := r.Machine
	fmt.Fprintf(w, "# bench cluster: %d wspushd nodes on one Redis against one node\n\n", r.Nodes)
	fmt.Fprintf(w, "- command: `%s`\n- machine: %d CPUs, %s, kernel %s, %s\n- rounds: %d (medians, min – max); every wspushd with `--history-size %d`\n\n",
		strings.Join(r.Command, " "), m.CPUs, m.CPUModel, m.Kernel, m.GoVersion, r.Rounds, r.HistorySize)
	g := grid{title: "Medians", head: r.header()}
	for _, row := range r.Rows {
		g.rows = append(g.rows, row.cells())
	}
	writeMDGrid(w, g, "##")
	fmt.Fprintf(w, "%s.\n\n", r.checkLine())
	fmt.Fprintf(w, "The load is the same for both: the connections are spread round-robin over the nodes' WebSocket addresses, "+
		"publishes round-robin over their APIs. wspushd CPU is the sum over the nodes (/proc); Redis CPU is its own /proc "+
		"figure over the whole step run (connect phase included). The one node runs the embedded engine (no --broker).\n\n")
	if ps := r.problems(); len(ps) > 0 {
		fmt.Fprintf(w, "## Problems\n\n")
		for _, p := range ps {
			fmt.Fprintf(w, "- %s\n", p)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Commands\n\n```sh\n")
	for _, sc := range r.Scenarios {
		fmt.Fprintf(w, "%s\n", strings.Join(append([]string{"bench", sc.Command}, sc.Args...), " ")+" --ws $WS1,$WS2,... --api $API1,$API2,... --server-pid $PID1,$PID2,... --json FILE")
	}
	fmt.Fprintf(w, "```\n\nPer-run reports, outputs and server logs: `%s`.\n", r.RawDir)
	return nil
}

// writeOutputs prints the table and writes the files asked for.
func (c *ClusterConfig) writeOutputs(res *ClusterResults) error {
	errs := []error{WriteClusterTerminal(c.Out, res)}
	if c.JSON != "" {
		errs = append(errs, writeJSON(c.JSON, res))
	}
	if c.MD != "" {
		errs = append(errs, writeFile(c.MD, func(w io.Writer) error { return WriteClusterMarkdown(w, res) }))
	}
	return errors.Join(errs...)
}
