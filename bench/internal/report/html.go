package report

import (
	"bytes"
	_ "embed" // the ECharts library, inlined into the page
	"html"
	"maps"
	"os"
	"regexp"
	"slices"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/components"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/wspush/wspush/bench/internal/stats"
)

// echartsJS is Apache ECharts 5.6.0 (dist/echarts.min.js from the npm
// package, Apache-2.0, see assets/ECHARTS-LICENSE), inlined so that the
// page needs no network.
//
//go:embed assets/echarts.min.js
var echartsJS []byte

// scriptTag matches the <script src=…echarts.min.js> tag go-echarts writes.
var scriptTag = regexp.MustCompile(`<script src="[^"]*echarts\.min\.js"></script>`)

func sortedKeys(m map[string]float64) []string { return slices.Sorted(maps.Keys(m)) }

// xy is one point of a chart with a value x axis.
func xy(x, y float64) opts.LineData { return opts.LineData{Value: []any{x, y}} }

func lineChart(title, xName, yName, xType string) *charts.Line {
	l := charts.NewLine()
	l.SetGlobalOptions(
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "380px"}),
		charts.WithTitleOpts(opts.Title{Title: title}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithXAxisOpts(opts.XAxis{Type: xType, Name: xName, NameLocation: "middle", NameGap: 28}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: yName}),
		charts.WithAnimation(false),
	)
	return l
}

func series(l *charts.Line, name string, pts []opts.LineData) {
	l.AddSeries(name, pts, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}))
}

// HTML renders r as one self-contained page: the table, the latency CDF,
// and connections, server RSS and deliveries/s over time.
func (r *Report) HTML() ([]byte, error) {
	page := components.NewPage()
	page.SetPageTitle("wspush bench: " + r.Scenario)
	page.SetLayout(components.PageFlexLayout)

	if len(r.CDF) > 0 {
		l := lineChart("latency CDF ("+r.CDFName+")", "latency, ms (log)", "fraction ≤ x", "log")
		var pts []opts.LineData
		for _, p := range r.CDF {
			pts = append(pts, xy(max(p.Ms, 0.001), p.Fraction))
		}
		series(l, r.CDFName, pts)
		page.AddCharts(l)
	}
	over := func(title, yName, name string, f func(stats.Point) (float64, bool)) {
		var pts []opts.LineData
		for _, p := range r.Series {
			if v, ok := f(p); ok {
				pts = append(pts, xy(p.T, v))
			}
		}
		if len(pts) == 0 {
			return
		}
		l := lineChart(title, "time, s", yName, "value")
		series(l, name, pts)
		page.AddCharts(l)
	}
	over("connections over time", "connections", "up", func(p stats.Point) (float64, bool) { return float64(p.Conns), true })
	over("server RSS over time", "MiB", "VmRSS", func(p stats.Point) (float64, bool) {
		return float64(p.ServerRSS) / (1 << 20), p.ServerRSS > 0
	})
	over("deliveries per second", "deliveries/s", "deliveries/s", func(p stats.Point) (float64, bool) { return p.Rate, true })
	if r.Churn != nil {
		over("churn cycles (cumulative)", "cycles", "cycles", func(p stats.Point) (float64, bool) { return float64(p.Cycles), true })
	}

	var buf bytes.Buffer
	if err := page.Render(&buf); err != nil {
		return nil, err
	}
	out := scriptTag.ReplaceAllLiteral(buf.Bytes(), append(append([]byte("<script>"), echartsJS...), "</script>"...))
	var table bytes.Buffer
	r.WriteTable(&table)
	pre := []byte("<body>\n<pre style=\"font-size:13px\">" + html.EscapeString(table.String()) + "</pre>\n")
	out = bytes.Replace(out, []byte("<body>"), pre, 1)
	return out, nil
}

// WriteHTML writes the page to path.
func (r *Report) WriteHTML(path string) error {
	b, err := r.HTML()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
