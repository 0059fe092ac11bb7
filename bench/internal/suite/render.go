package suite

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Format prints v in d's unit.
func Format(d MetricDef, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	switch d.Unit {
	case UnitRate, UnitCount:
		return thousands(int(math.Round(v)))
	case UnitMs:
		switch a := math.Abs(v); {
		case a < 1:
			return fmt.Sprintf("%.3f ms", v)
		case a < 10:
			return fmt.Sprintf("%.2f ms", v)
		case a < 100:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.0f ms", v)
	case UnitBytes:
		return fmt.Sprintf("%.0f B", v)
	case UnitMiB:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case UnitDMiB:
		return fmt.Sprintf("%+.2f MiB", v/(1<<20))
	case UnitDelta:
		return fmt.Sprintf("%+.0f", v)
	case UnitPerM:
		return fmt.Sprintf("%.2f s", v)
	case UnitSec:
		return fmt.Sprintf("%.3f s", v)
	case UnitUs:
		if math.Abs(v) < 10 {
			return fmt.Sprintf("%.2f µs", v)
		}
		return fmt.Sprintf("%.1f µs", v)
	case UnitPerCon:
		return fmt.Sprintf("%.2f", v)
	case UnitBool:
		switch v {
		case 1:
			return "yes"
		case 0:
			return "no"
		}
		return fmt.Sprintf("%.0f%%", v*100)
	}
	return fmt.Sprintf("%g", v)
}

// ratioText prints a ratio with its verdict.
func ratioText(r Ratio) string {
	if !r.Ratio.OK() {
		return "n/a"
	}
	return fmt.Sprintf("%.2f× %s", float64(r.Ratio), r.Verdict)
}

// grid is a table: a header row and rows of cells.
type grid struct {
	title string
	head  []string
	rows  [][]string
}

// serversFor are the servers that ran scenario id, in turn order.
func (r *Results) serversFor(id string) []string {
	var out []string
	for _, s := range r.Servers {
		if runs(s, id) {
			out = append(out, s.Name)
		}
	}
	return out
}

// cell prints server's median of metric d (with the range when withRange
// and the rounds differ).
func (r *Results) cell(server string, d MetricDef, withRange bool) string {
	s, ok := r.Table.Get(server, d.ID())
	if !ok {
		return "n/a"
	}
	out := Format(d, s.Median)
	if withRange && len(s.Values) > 1 && s.Min != s.Max {
		out += " (" + Format(d, s.Min) + " – " + Format(d, s.Max) + ")"
	}
	if len(s.Values) < r.Rounds {
		out += fmt.Sprintf(" [%d of %d rounds]", len(s.Values), r.Rounds)
	}
	return out
}

// scenarioGrids are the medians, one grid per scenario.
func (r *Results) scenarioGrids(withRange bool) []grid {
	var out []grid
	for _, sc := range r.Scenarios {
		servers := r.serversFor(sc.ID)
		g := grid{title: sc.Title, head: append([]string{"metric"}, servers...)}
		for _, d := range Metrics {
			if d.Scenario != sc.ID {
				continue
			}
			row := []string{d.Label}
			has := false
			for _, s := range servers {
				c := r.cell(s, d, withRange)
				has = has || c != "n/a"
				row = append(row, c)
			}
			if has {
				g.rows = append(g.rows, row)
			}
		}
		row := []string{"delivery checks passed"}
		has := false
		for _, s := range servers {
			if c := r.Checks[s][sc.ID]; c != nil {
				row = append(row, fmt.Sprintf("%d/%d", c.Passed, c.Runs))
				has = true
			} else {
				row = append(row, "n/a")
			}
		}
		if has {
			g.rows = append(g.rows, row)
		}
		out = append(out, g)
	}
	return out
}

// ratioGrid is the reference against each peer on the headline metrics.
func (r *Results) ratioGrid() grid {
	peers := r.peers()
	g := grid{title: fmt.Sprintf("%s / each peer (medians; <1 is smaller: better for times, memory and CPU, worse for rates)", r.Ref),
		head: []string{"metric", r.Ref}}
	for _, p := range peers {
		g.head = append(g.head, r.Ref+" / "+p)
	}
	for _, d := range Metrics {
		if !d.Headline {
			continue
		}
		row := []string{scenarioShort(r, d.Scenario) + ": " + d.Label, r.cell(r.Ref, d, false)}
		for _, p := range peers {
			for _, x := range r.Ratios {
				if x.Metric == d.ID() && x.Other == p {
					row = append(row, ratioText(x)+r.targetMark(d.ID(), p))
				}
			}
		}
		g.rows = append(g.rows, row)
	}
	return g
}

// targetMark notes the targets about metric against other.
func (r *Results) targetMark(metric, other string) string {
	var parts []string
	for _, t := range r.Targets {
		if t.Metric == metric && t.Other == other {
			op := map[string]string{"<": "<", "<=": "≤", ">=": "≥"}[t.Op]
			parts = append(parts, fmt.Sprintf("target %s%.2f: %s", op, t.Factor, t.Status))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func scenarioShort(r *Results, id string) string {
	for _, s := range r.Scenarios {
		if s.ID == id {
			return s.Title
		}
	}
	return id
}

// targetGrid is the standard targets, judged.
func (r *Results) targetGrid() grid {
	title := "targets (" + r.Ref + ")"
	if r.Quick {
		title += " — quick sizes: the targets are stated for the full sizes, so this is indicative only"
	}
	g := grid{title: title, head: []string{"target", r.Ref, "bound", "status"}}
	for _, t := range r.Targets {
		d, _ := metricDef(t.Metric)
		bound := Format(d, float64(t.Bound))
		if t.Other != "" && t.Bound.OK() {
			bound += fmt.Sprintf(" (%.2f× %s)", t.Factor, t.Other)
		}
		status := t.Status
		if t.Detail != "" {
			status += ": " + t.Detail
		}
		g.rows = append(g.rows, []string{t.Text, Format(d, float64(t.Value)), bound, status})
	}
	return g
}

// problems lists runs that errored or failed their checks.
func (r *Results) problems() []string {
	var out []string
	for _, s := range r.ServerRuns {
		if s.Error != "" {
			out = append(out, fmt.Sprintf("round %d %s: server: %s", s.Round, s.Server, s.Error))
		}
	}
	for _, x := range r.Runs {
		switch {
		case x.Error != "":
			out = append(out, fmt.Sprintf("round %d %s %s: %s", x.Round, x.Server, x.Scenario, x.Error))
		case x.Pass != nil && !*x.Pass:
			out = append(out, fmt.Sprintf("round %d %s %s: checks failed: %s", x.Round, x.Server, x.Scenario, x.Verdict))
		}
	}
	return out
}

// WriteTerminal prints the medians, ratios and targets as aligned tables.
func WriteTerminal(w io.Writer, r *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\n== suite: medians of %d rounds (%.0f s)\n", r.Rounds, r.Seconds)
	grids := append(r.scenarioGrids(false), r.ratioGrid(), r.targetGrid())
	for _, g := range grids {
		fmt.Fprintf(tw, "-- %s\n", g.title)
		fmt.Fprintf(tw, "  %s\n", strings.Join(g.head, "\t"))
		for _, row := range g.rows {
			fmt.Fprintf(tw, "  %s\n", strings.Join(row, "\t"))
		}
		// A blank line ends the tabwriter's column block.
		fmt.Fprintln(tw)
	}
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintln(tw, "-- problems")
		for _, s := range p {
			fmt.Fprintf(tw, "  %s\n", s)
		}
	}
	return tw.Flush()
}

// mdEscape keeps a cell inside its Markdown table cell.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func writeMDGrid(w io.Writer, g grid, level string) {
	fmt.Fprintf(w, "%s %s\n\n", level, g.title)
	esc := func(cells []string) []string {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = mdEscape(c)
		}
		return out
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(esc(g.head), " | "))
	seps := make([]string, len(g.head))
	for i := range seps {
		seps[i] = "---:"
	}
	seps[0] = "---"
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, row := range g.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(esc(row), " | "))
	}
	fmt.Fprintln(w)
}

// commandTemplate is a scenario's bench command with the per-run values
// as shell variables.
func (r *Results) commandTemplate(sc Scenario) string {
	exe := "bench"
	if len(r.Command) > 0 {
		exe = r.Command[0]
	}
	args := append([]string{exe, sc.Command}, sc.Args...)
	args = append(args, "--ws", "$WS", "--api", "$API", "--server-pid", "$PID", "--json", "FILE")
	return strings.Join(args, " ")
}

// WriteMarkdown writes the results as a Markdown document.
func WriteMarkdown(w io.Writer, r *Results) error {
	m := r.Machine
	if len(r.peers()) > 0 {
		fmt.Fprintf(w, "# bench suite: %s against %s\n\n", r.Ref, strings.Join(r.peers(), ", "))
	} else {
		fmt.Fprintf(w, "# bench suite: %s\n\n", r.Ref)
	}
	fmt.Fprintf(w, "- command: `%s`\n", strings.Join(r.Command, " "))
	if len(r.Resummarized) > 0 {
		fmt.Fprintf(w, "- summarized again from the per-run reports by: `%s`\n", strings.Join(r.Resummarized, " "))
	}
	fmt.Fprintf(w, "- started: %s, took %s\n", r.Started.UTC().Format(time.RFC3339), (time.Duration(r.Seconds) * time.Second).String())
	fmt.Fprintf(w, "- machine: %d CPUs (%s), %.1f GiB, kernel %s, %s, open files %d (hard %d)\n",
		m.CPUs, m.CPUModel, float64(m.MemoryBytes)/(1<<30), m.Kernel, m.GoVersion, m.FDSoft, m.FDHard)
	sizes := "full"
	if r.Quick {
		sizes = "quick (--quick)"
	}
	fmt.Fprintf(w, "- sizes: %s; %d rounds, servers in turn, first round in this order, each next round rotated by one: %s\n", sizes, r.Rounds, strings.Join(r.names(), ", "))
	fmt.Fprintf(w, "- the clients run on the same machine and share its CPUs with the server: compare ratios, not absolute numbers\n\n")
	fmt.Fprintf(w, "Each cell is the median over the rounds, with the range (min – max) when they differ.\n\n")
	fmt.Fprintf(w, "## Medians\n\n")
	for _, g := range r.scenarioGrids(true) {
		writeMDGrid(w, g, "###")
	}
	fmt.Fprintf(w, "## Ratios\n\n")
	writeMDGrid(w, r.ratioGrid(), "###")
	fmt.Fprintf(w, "## Targets\n\n")
	writeMDGrid(w, r.targetGrid(), "###")
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintf(w, "## Problems\n\n")
		for _, s := range p {
			fmt.Fprintf(w, "- %s\n", mdEscape(s))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Commands\n\n")
	fmt.Fprintf(w, "Each server was started on free loopback ports (peers: `-listen 127.0.0.1:0 -api-listen 127.0.0.1:0`;"+
		" wspushd: `--listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --log-level info --pprof`, and `--ping-interval %s` and `--latency-sample %s` unless given;"+
		" each server's exact command is under Servers below), then each scenario ran as:\n\n```sh\n", WspushdPingInterval, WspushdLatencySample)
	for _, sc := range r.Scenarios {
		fmt.Fprintf(w, "%s\n", r.commandTemplate(sc))
		if len(sc.WspushdArgs) > 0 {
			fmt.Fprintf(w, "#   against wspushd also: %s\n", strings.Join(sc.WspushdArgs, " "))
		}
		if sc.WspushdOnly {
			fmt.Fprintf(w, "#   against wspushd only\n")
		}
		if len(sc.ServerArgs) > 0 {
			fmt.Fprintf(w, "#   on a server of its own, started with also: %s\n", strings.Join(sc.ServerArgs, " "))
		}
	}
	fmt.Fprintf(w, "```\n\nServers:\n\n")
	for _, s := range r.Servers {
		line := fmt.Sprintf("- %s: `%s %s`", s.Name, s.Path, strings.Join(startArgs(s), " "))
		if len(s.Only) > 0 {
			line += " (only " + strings.Join(s.Only, ", ") + ")"
		}
		if len(s.ClientArgs) > 0 {
			line += "; every scenario against it also with `" + strings.Join(s.ClientArgs, " ") + "`"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nPer-run reports, outputs and server logs: `%s`.\n", filepath.ToSlash(r.RawDir))
	return nil
}

func (r *Results) names() []string {
	var out []string
	for _, s := range r.Servers {
		out = append(out, s.Name)
	}
	return out
}
