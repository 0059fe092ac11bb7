package scale

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/report"
)

// nodes is k nodes as a results file lists them.
func nodes(k int) []*Node {
	out := make([]*Node, k)
	for i := range out {
		out[i] = &Node{Name: "node" + string(rune('1'+i%9))}
	}
	return out
}

// The synthetic runs: each figure distinct, so that a point read back from
// the wrong run or field shows.
var (
	run100k = &Result{Config: Config{Conns: 100000}, Nodes: nodes(7), Connected: 100000, ConnectSeconds: 50, ConnectRate: 2000,
		Cost:      Cost{Conns: 100000, UserRSSPerConn: 3100, UserRSSAllInPerConn: 3900, UserPSSAllInPerConn: 3500, KernelPerConn: 4500},
		Hold:      Load{Seconds: 76, PingsPerSec: 4000, BusyCores: 0.5, NodeUsPerPing: 30, BoxUsPerPing: 110},
		Broadcast: &report.LastSub{Messages: 3, Complete: 3, MedianMs: 150, MaxMs: 180}, Pass: true}
	run250k = &Result{Config: Config{Conns: 250000}, Nodes: nodes(15), Connected: 250000, ConnectSeconds: 125.5, ConnectRate: 1992.03,
		Cost:      Cost{Conns: 250000, UserRSSPerConn: 3050, UserRSSAllInPerConn: 3600, UserPSSAllInPerConn: 3300, KernelPerConn: 4400},
		Hold:      Load{Seconds: 76, PingsPerSec: 10000, BusyCores: 1.25, NodeUsPerPing: 28.5, BoxUsPerPing: 105.2},
		Broadcast: &report.LastSub{Messages: 3, Complete: 3, MedianMs: 400.3, MaxMs: 520.5}, Pass: true}
	run500k = &Result{Config: Config{Conns: 500000}, Nodes: nodes(28), Connected: 499990, ConnectSeconds: 260.4, ConnectRate: 1920.1,
		Cost:      Cost{Conns: 499990, UserRSSPerConn: 3020.4, UserRSSAllInPerConn: 3450.6, UserPSSAllInPerConn: 3200.2, KernelPerConn: 4350.8},
		Hold:      Load{Seconds: 76, PingsPerSec: 20000, BusyCores: 2.75, NodeUsPerPing: 27.25, BoxUsPerPing: 101.5},
		Broadcast: &report.LastSub{Messages: 3, Complete: 2, MedianMs: 900.5, MaxMs: 1350.7},
		Counts:    check.Counts{Missing: 12}, Problems: []string{"499990 of 500000 connected, 0 failed", "deliveries: 12 missing | 0 duplicated"}}
	// run500kNoNodeCPU is run500k with the nodes' CPU not read: that
	// point is left out, the machine's is not.
	run500kNoNodeCPU = withHold(run500k, Load{Seconds: 76, PingsPerSec: 20000, BusyCores: 2.5, BoxUsPerPing: 95})
	// runCut ended in the connect phase: nothing measured.
	runCut = &Result{Config: Config{Conns: 100000}, Nodes: nodes(7), Connected: 40000, ConnectSeconds: 1800, ConnectRate: 22.2,
		Problems: []string{"40000 of 100000 connected, 60000 failed"}}
)

func withHold(r *Result, l Load) *Result {
	c := *r
	c.Hold = l
	return &c
}

// The Markdown table's lines.
const (
	mdHead = "| N | nodes | connected | connect s (conns/s) | growth B/conn | RSS all-in B/conn | PSS all-in B/conn | kernel B/conn | " +
		"hold pings/s | hold cores busy | machine µs/ping | bcast last median / max ms | missing | result |"
	mdSep     = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	row100k   = "| 100,000 | 7 | 100,000 | 50.0 (2,000) | 3100 | 3900 | 3500 | 4500 | 4,000 | 0.50 | 110.0 | 150.0 / 180.0 | 0 | PASS |"
	row250k   = "| 250,000 | 15 | 250,000 | 125.5 (1,992) | 3050 | 3600 | 3300 | 4400 | 10,000 | 1.25 | 105.2 | 400.3 / 520.5 | 0 | PASS |"
	row500k   = "| 500,000 | 28 | 499,990 | 260.4 (1,920) | 3020 | 3451 | 3200 | 4351 | 20,000 | 2.75 | 101.5 | 900.5 / 1350.7 | 12 | FAIL |"
	row500kNC = "| 500,000 | 28 | 499,990 | 260.4 (1,920) | 3020 | 3451 | 3200 | 4351 | 20,000 | 2.50 | 95.0 | 900.5 / 1350.7 | 12 | FAIL |"
	rowCut    = "| 100,000 | 7 | 40,000 | 1800.0 (22) | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0 | FAIL |"
)

// fail500k and failCut are the problems lines of run500k and runCut, read
// from file.
func fail500k(file string) string {
	return "- FAIL at N = 500,000 (" + file + "): 499990 of 500000 connected, 0 failed; deliveries: 12 missing \\| 0 duplicated"
}

func failCut(file string) string {
	return "- FAIL at N = 100,000 (" + file + "): 40000 of 100000 connected, 60000 failed"
}

// points is a chart's series by name.
type points map[string][][2]float64

// TestScaleReport writes results files, runs the report, reads the page
// back with report.ReadCharts and checks the charts' points against the
// inputs (sorted by N, unmeasured points left out) and the table's rows.
func TestScaleReport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  []*Result // written to scalea.json, scaleb.json, ...
		mdFile bool      // --out-md instead of stdout
		charts map[string]points
		md     []string // the table's lines, the files named without their directory
	}{
		{name: "three runs given out of order", files: []*Result{run500k, run100k, run250k},
			charts: map[string]points{
				ChartMemory: {
					SeriesRSSGrowth: {{100000, 3100}, {250000, 3050}, {500000, 3020.4}},
					SeriesRSSAllIn:  {{100000, 3900}, {250000, 3600}, {500000, 3450.6}},
					SeriesPSSAllIn:  {{100000, 3500}, {250000, 3300}, {500000, 3200.2}},
					SeriesKernel:    {{100000, 4500}, {250000, 4400}, {500000, 4350.8}},
				},
				ChartBroadcast: {
					SeriesBcastMedian: {{100000, 150}, {250000, 400.3}, {500000, 900.5}},
					SeriesBcastMax:    {{100000, 180}, {250000, 520.5}, {500000, 1350.7}},
				},
				ChartKeepalive: {
					SeriesBoxUsPerPing:  {{100000, 110}, {250000, 105.2}, {500000, 101.5}},
					SeriesNodeUsPerPing: {{100000, 30}, {250000, 28.5}, {500000, 27.25}},
				},
			},
			md: []string{mdHead, mdSep, row100k, row250k, row500k, "", fail500k("scalea.json")}},
		{name: "a run cut short and one without the nodes' CPU", files: []*Result{run500kNoNodeCPU, runCut, run250k}, mdFile: true,
			charts: map[string]points{
				ChartMemory: {
					SeriesRSSGrowth: {{250000, 3050}, {500000, 3020.4}},
					SeriesRSSAllIn:  {{250000, 3600}, {500000, 3450.6}},
					SeriesPSSAllIn:  {{250000, 3300}, {500000, 3200.2}},
					SeriesKernel:    {{250000, 4400}, {500000, 4350.8}},
				},
				ChartBroadcast: {
					SeriesBcastMedian: {{250000, 400.3}, {500000, 900.5}},
					SeriesBcastMax:    {{250000, 520.5}, {500000, 1350.7}},
				},
				ChartKeepalive: {
					SeriesBoxUsPerPing:  {{250000, 105.2}, {500000, 95}},
					SeriesNodeUsPerPing: {{250000, 28.5}},
				},
			},
			md: []string{mdHead, mdSep, rowCut, row250k, row500kNC, "", failCut("scaleb.json"), fail500k("scalea.json")}},
		{name: "nothing measured: no chart", files: []*Result{runCut},
			md: []string{mdHead, mdSep, rowCut, "", failCut("scalea.json")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := writeResults(t, dir, tc.files)
			cfg := ReportConfig{Files: paths, HTML: filepath.Join(dir, "out.html")}
			var out bytes.Buffer
			cfg.Out = &out
			if tc.mdFile {
				cfg.MD = filepath.Join(dir, "out.md")
			}
			if err := RunReport(cfg); err != nil {
				t.Fatal(err)
			}
			md := out.Bytes()
			if tc.mdFile {
				if out.Len() > 0 {
					t.Errorf("--out-md given, yet stdout got %q", out.String())
				}
				md = readFile(t, cfg.MD)
			}
			checkMarkdown(t, strings.ReplaceAll(string(md), dir+string(filepath.Separator), ""), tc.md)
			page := readFile(t, cfg.HTML)
			if !bytes.Contains(page, []byte(strings.Trim(tc.md[2], "| "))) {
				t.Error("the page does not show the table")
			}
			checkCharts(t, page, tc.charts)
		})
	}
}

// writeResults writes each result to its own file under dir (nil: no
// file) and returns the paths.
func writeResults(t *testing.T, dir string, rs []*Result) []string {
	t.Helper()
	var paths []string
	for i, r := range rs {
		p := filepath.Join(dir, "scale"+string(rune('a'+i))+".json")
		if r != nil {
			if err := writeJSON(p, r); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, p)
	}
	return paths
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkMarkdown compares the table's lines with want.
func checkMarkdown(t *testing.T, got string, want []string) {
	t.Helper()
	if lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n"); !reflect.DeepEqual(lines, want) {
		t.Errorf("markdown:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// checkCharts reads the page's charts back and compares every chart's
// points with want, chart by chart in the page's order.
func checkCharts(t *testing.T, page []byte, want map[string]points) {
	t.Helper()
	cs, err := report.ReadCharts(page)
	if len(want) == 0 {
		if err == nil {
			t.Errorf("charts %v on the page, want none", cs)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
		if c.XName != connsAxis || c.XLog || c.Title == "" || c.Subtitle == "" || c.YName == "" {
			t.Errorf("chart %s: x axis %q (log %v), title %q, y %q", c.ID, c.XName, c.XLog, c.Title, c.YName)
		}
		got := points{}
		for _, s := range c.Series {
			got[s.Name] = s.Points
			if !s.Symbols {
				t.Errorf("chart %s, %s: one point per run, drawn without symbols", c.ID, s.Name)
			}
		}
		if !reflect.DeepEqual(got, want[c.ID]) {
			t.Errorf("chart %s:\n got %v\nwant %v", c.ID, got, want[c.ID])
		}
	}
	if wantIDs := []string{ChartMemory, ChartBroadcast, ChartKeepalive}; !reflect.DeepEqual(ids, wantIDs) {
		t.Errorf("charts %v, want %v", ids, wantIDs)
	}
}

// TestScaleReportErrors: a missing, unreadable or foreign file, or a
// missing setting, is an error, and nothing is written.
func TestScaleReportErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []string // "": no such file
		noHTML  bool
		want    error
		wantIs  error
	}{
		{name: "missing file", content: []string{"ok", ""}, want: ErrResults, wantIs: fs.ErrNotExist},
		{name: "invalid JSON", content: []string{"ok", `{"config": {"conns": 5`}, want: ErrResults},
		{name: "wrong types", content: []string{`{"config": {"conns": "many"}}`}, want: ErrResults},
		{name: "not a scale result", content: []string{"ok", `{"scenario": "broadcast", "seconds": 3}`}, want: ErrResults},
		{name: "a directory", content: []string{"ok", "DIR"}, want: ErrResults},
		{name: "no file", want: ErrConfig},
		{name: "no --html", content: []string{"ok"}, noHTML: true, want: ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for i, c := range tc.content {
				p := filepath.Join(dir, "r"+string(rune('a'+i))+".json")
				switch c {
				case "ok":
					must(t, writeJSON(p, run100k))
				case "DIR":
					must(t, os.Mkdir(p, 0o755))
				case "":
				default:
					must(t, os.WriteFile(p, []byte(c), 0o644))
				}
				paths = append(paths, p)
			}
			cfg := ReportConfig{Files: paths, HTML: filepath.Join(dir, "out.html"), MD: filepath.Join(dir, "out.md")}
			if tc.noHTML {
				cfg.HTML = ""
			}
			err := RunReport(cfg)
			if !errors.Is(err, tc.want) || (tc.wantIs != nil && !errors.Is(err, tc.wantIs)) {
				t.Fatalf("error %v, want %v (and %v)", err, tc.want, tc.wantIs)
			}
			for _, p := range []string{filepath.Join(dir, "out.html"), cfg.MD} {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s written on an error (%v)", p, err)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1992.6: "1,993", 1234567: "1,234,567", -1500: "-1,500", -0.2: "0"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
