package suite

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	def := func(unit string) MetricDef { return MetricDef{Unit: unit} }
	for _, tc := range []struct {
		unit string
		v    float64
		want string
	}{
		{UnitRate, 15612.6, "15,613"},
		{UnitCount, 0, "0"},
		{UnitMs, 0.1234, "0.123 ms"},
		{UnitMs, 3.456, "3.46 ms"},
		{UnitMs, 23.45, "23.4 ms"},
		{UnitMs, 319.4, "319 ms"},
		{UnitBytes, 749.78, "750 B"},
		{UnitMiB, 87.6 * (1 << 20), "87.6 MiB"},
		{UnitDMiB, -6.19 * (1 << 20), "-6.19 MiB"},
		{UnitDelta, 0, "+0"},
		{UnitDelta, -128, "-128"},
		{UnitPerM, 5.214, "5.21 s"},
		{UnitPerCon, 1, "1.00"},
		{UnitBool, 1, "yes"},
		{UnitBool, 0, "no"},
		{UnitBool, 0.5, "50%"},
		{UnitUs, 10.04, "10.0 µs"},
		{UnitMs, math.NaN(), "n/a"},
		{UnitRate, math.Inf(1), "n/a"},
	} {
		if got := Format(def(tc.unit), tc.v); got != tc.want {
			t.Errorf("Format(%q, %v) = %q, want %q", tc.unit, tc.v, got, tc.want)
		}
	}
}

// TestMarkdownSmall renders a results set with one server and no runs: no
// ratio columns, every target n/a, cells escaped.
func TestMarkdownSmall(t *testing.T) {
	r := &Results{RunInfo: RunInfo{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Seconds: 90,
		Command: []string{"bin/bench", "suite", "--quick"},
		Machine: Machine{CPUs: 2, MemoryBytes: 24 << 30, Kernel: "6.18", GoVersion: "go1.26.8", FDSoft: 20000, FDHard: 20000}},
		Rounds: 3, Ref: "ws|push", Quick: true,
		Servers:   []ServerSpec{{Name: "ws|push", Path: "bin/wspushd", Kind: KindWspushd}},
		Scenarios: Plan(QuickSizes)[:1],
		RawDir:    "bench/results/x.raw",
	}
	r.summarize()
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# bench suite: ws|push\n",
		"- started: 2026-01-02T03:04:05Z, took 1m30s",
		"- machine: 2 CPUs (), 24.0 GiB, kernel 6.18, go1.26.8, open files 20000 (hard 20000)",
		"- sizes: quick (--quick); 3 rounds",
		"share its CPUs with the server",
		"### connect 2,000, idle memory",
		`| metric | ws\|push |`,
		"targets are stated for the full sizes",
		"| idle RSS per connection at 19,000, read after three ping intervals, at most 600 B | n/a | 600 B | n/a: no connect.rss_per_conn_keepalive_bytes for ws|push in this run |",
		"Per-run reports, outputs and server logs: `bench/results/x.raw`.",
	} {
		if !strings.Contains(md, strings.ReplaceAll(want, "for ws|push", `for ws\|push`)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "## Problems") {
		t.Error("problems without runs")
	}
	var term bytes.Buffer
	if err := WriteTerminal(&term, r); err != nil || !strings.Contains(term.String(), "== suite: medians of 3 rounds") {
		t.Errorf("terminal: %v\n%s", err, term.String())
	}
}
