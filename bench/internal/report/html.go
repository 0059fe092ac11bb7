package report

import (
	"bytes"
	_ "embed" // the ECharts library, inlined into the page
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"os"
	"regexp"
	"slices"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/components"
	"github.com/go-echarts/go-echarts/v2/opts"
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

// lineChart draws c with go-echarts.
func lineChart(c Chart) *charts.Line {
	l := charts.NewLine()
	xType := "value"
	if c.XLog {
		xType = "log"
	}
	l.SetGlobalOptions(
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "400px", ChartID: c.ID}),
		charts.WithTitleOpts(opts.Title{Title: c.Title, Subtitle: c.Subtitle}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Right: "10"}),
		charts.WithGridOpts(opts.Grid{Top: "90"}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithXAxisOpts(opts.XAxis{Type: xType, Name: c.XName, NameLocation: "middle", NameGap: 28}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: c.YName}),
		charts.WithAnimation(false),
	)
	for i, s := range c.Series {
		data := make([]opts.LineData, len(s.Points))
		for j, p := range s.Points {
			data[j] = opts.LineData{Value: []any{p[0], p[1]}}
		}
		so := []charts.SeriesOpts{charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(s.Symbols)})}
		if i == 0 && len(c.Marks) > 0 {
			so = append(so, marks(c.Marks)...)
		}
		l.AddSeries(s.Name, data, so...)
	}
	return l
}

// marks draws vertical lines at the phase boundaries.
func marks(ms []Mark) []charts.SeriesOpts {
	items := make([]opts.MarkLineNameXAxisItem, len(ms))
	for i, m := range ms {
		items[i] = opts.MarkLineNameXAxisItem{Name: m.Name, XAxis: m.X}
	}
	return []charts.SeriesOpts{
		charts.WithMarkLineNameXAxisItemOpts(items...),
		charts.WithMarkLineStyleOpts(opts.MarkLineStyle{
			Symbol:    []string{"none", "none"},
			Label:     &opts.Label{Show: opts.Bool(true), Formatter: "{b}", Position: "insideEndTop"},
			LineStyle: &opts.LineStyle{Type: "dashed", Color: "#999"},
		}),
	}
}

// HTML renders r as one self-contained page: the table and the plots of
// Charts.
func (r *Report) HTML() ([]byte, error) {
	var table bytes.Buffer
	r.WriteTable(&table)
	return ChartsHTML("wspush bench: "+r.Scenario, table.String(), r.Charts())
}

// ChartsHTML renders any charts as one self-contained page with the look
// of HTML's (ECharts inlined, one plot after the other): text, when not
// empty, is shown above the plots as preformatted text (HTML-escaped), and
// title is the page's title. ReadCharts reads the charts back.
func ChartsHTML(title, text string, cs []Chart) ([]byte, error) {
	page := components.NewPage()
	page.SetPageTitle(title)
	page.SetLayout(components.PageFlexLayout)
	for _, c := range cs {
		page.AddCharts(lineChart(c))
	}
	var buf bytes.Buffer
	if err := page.Render(&buf); err != nil {
		return nil, err
	}
	out := scriptTag.ReplaceAllLiteral(buf.Bytes(), append(append([]byte("<script>"), echartsJS...), "</script>"...))
	if text != "" {
		pre := []byte("<body>\n<pre style=\"font-size:13px\">" + html.EscapeString(text) + "</pre>\n")
		out = bytes.Replace(out, []byte("<body>"), pre, 1)
	}
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

// optionLine matches the ECharts option of one chart on a page.
var optionLine = regexp.MustCompile(`(?m)^\s*let option_(\w+) = (\{.*\})\s*;?\s*$`)

// pageOption is the part of an ECharts option that ReadCharts reads.
type pageOption struct {
	Title struct {
		Text    string `json:"text"`
		Subtext string `json:"subtext"`
	} `json:"title"`
	XAxis []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"xAxis"`
	YAxis []struct {
		Name string `json:"name"`
	} `json:"yAxis"`
	Series []struct {
		Name       string `json:"name"`
		ShowSymbol bool   `json:"showSymbol"`
		Data       []struct {
			Value [2]float64 `json:"value"`
		} `json:"data"`
		MarkLine *struct {
			Data []struct {
				Name  string  `json:"name"`
				XAxis float64 `json:"xAxis"`
			} `json:"data"`
		} `json:"markLine"`
	} `json:"series"`
}

// ReadCharts reads back the charts drawn on a page written by HTML, from
// the ECharts options embedded in it: what a reader of the page sees, as
// data (for tests and for checking a page without a browser).
func ReadCharts(page []byte) ([]Chart, error) {
	var out []Chart
	for _, m := range optionLine.FindAllSubmatch(page, -1) {
		var o pageOption
		if err := json.Unmarshal(m[2], &o); err != nil {
			return nil, fmt.Errorf("report: chart %s: %w", m[1], err)
		}
		c := Chart{ID: string(m[1]), Title: o.Title.Text, Subtitle: o.Title.Subtext}
		if len(o.XAxis) > 0 {
			c.XName, c.XLog = o.XAxis[0].Name, o.XAxis[0].Type == "log"
		}
		if len(o.YAxis) > 0 {
			c.YName = o.YAxis[0].Name
		}
		for _, s := range o.Series {
			cs := ChartSeries{Name: s.Name, Symbols: s.ShowSymbol}
			for _, d := range s.Data {
				cs.Points = append(cs.Points, d.Value)
			}
			if s.MarkLine != nil {
				for _, d := range s.MarkLine.Data {
					c.Marks = append(c.Marks, Mark{Name: d.Name, X: d.XAxis})
				}
			}
			c.Series = append(c.Series, cs)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("report: no chart on the page")
	}
	return out, nil
}
