package report

import (
	"fmt"
	"strings"

	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
)

// Chart is one plot of the HTML page, as data: what HTML draws and what
// ReadCharts reads back from a page.
type Chart struct {
	// ID names the chart on the page (a Go identifier's letters): for a
	// Report latency_cdf, connections, server_rss, deliveries,
	// deliveries_rate, last_subscriber or churn_cycles; ChartsHTML's
	// callers name their own.
	ID string `json:"id"`
	// Title is the chart's title; Subtitle says what is counted and where.
	Title string `json:"title"`
	// Subtitle says what each series counts and where it was measured.
	Subtitle string `json:"subtitle,omitempty"`
	// XName and YName label the axes, with units.
	XName string `json:"x_name"`
	// YName labels the y axis, with units.
	YName string `json:"y_name"`
	// XLog draws the x axis on a log scale.
	XLog bool `json:"x_log,omitempty"`
	// Series are the lines.
	Series []ChartSeries `json:"series"`
	// Marks are vertical lines at named x values (the run's phase
	// boundaries on time charts).
	Marks []Mark `json:"marks,omitempty"`
}

// ChartSeries is one line of a chart.
type ChartSeries struct {
	// Name is the legend entry: what is counted, and where.
	Name string `json:"name"`
	// Points are (x, y) pairs in x order.
	Points [][2]float64 `json:"points"`
	// Symbols draws a dot at every point (for series of few points).
	Symbols bool `json:"symbols,omitempty"`
}

// Mark is a vertical line at X, labelled Name.
type Mark struct {
	// Name labels the line.
	Name string `json:"name"`
	// X is where the line is drawn.
	X float64 `json:"x"`
}

// Series names, so that tests and readers can find them.
const (
	SeriesClients     = "clients connected (bench side)"
	SeriesServerConns = "server connections (wspush_connections, /metrics)"
	SeriesServerRSS   = "server RSS (/proc), MiB"
	SeriesDeliveries  = "deliveries received (bench side, all clients)"
	SeriesRate        = "deliveries/s (bench side)"
	SeriesLastSub     = "time until the last subscriber had it, ms"
	SeriesCycles      = "churn cycles completed (bench side)"
)

// timeAxis is the x axis of every chart over time.
const timeAxis = "time since the run started, s"

// Charts lays out the page's plots from the report: the latency CDF,
// connections (bench side, and the server's count at each snapshot),
// server RSS, deliveries (cumulative and per second), per message the time
// until the last subscriber, and churn cycles. Charts without data are
// left out.
func (r *Report) Charts() []Chart {
	var out []Chart
	add := func(c Chart) {
		for _, s := range c.Series {
			if len(s.Points) > 0 {
				out = append(out, c)
				return
			}
		}
	}
	if len(r.CDF) > 0 {
		add(r.cdfChart())
	}
	add(r.connChart())
	add(r.timeChart("server_rss", "server RSS over time", "MiB", SeriesServerRSS,
		"resident set of the server process(es), read from /proc at each sample",
		func(p stats.Point) (float64, bool) { return float64(p.ServerRSS) / (1 << 20), p.ServerRSS > 0 }))
	if r.hasDeliveries() {
		add(r.timeChart("deliveries", "deliveries received (cumulative)", "deliveries", SeriesDeliveries,
			"messages received by the bench's clients, summed over clients and processes",
			func(p stats.Point) (float64, bool) { return float64(p.Deliveries), true }))
		add(r.timeChart("deliveries_rate", "deliveries per second", "deliveries/s", SeriesRate,
			fmt.Sprintf("bench side, each sample against the latest one at least %.0f ms earlier", stats.RateWindow*1000),
			func(p stats.Point) (float64, bool) { return p.Rate, true }))
	}
	if l := r.LastSubscriber; l != nil && len(l.PerMessage) > 0 {
		add(lastSubChart(l.PerMessage))
	}
	if r.Churn != nil {
		add(r.timeChart("churn_cycles", "churn cycles (cumulative)", "cycles", SeriesCycles,
			"connect, hold, close cycles finished by the bench's clients",
			func(p stats.Point) (float64, bool) { return float64(p.Cycles), true }))
	}
	return out
}

func (r *Report) cdfChart() Chart {
	c := Chart{ID: "latency_cdf", Title: "latency CDF (" + r.CDFName + ")", XName: "latency, ms (log)", YName: "fraction ≤ x", XLog: true,
		Subtitle: "bench side: receive time − the publisher's send time (handshake: dial + upgrade)"}
	s := ChartSeries{Name: r.CDFName}
	for _, p := range r.CDF {
		s.Points = append(s.Points, [2]float64{max(p.Ms, 0.001), p.Fraction})
	}
	c.Series = []ChartSeries{s}
	return c
}

// timeChart is one series over time from the sampled points.
func (r *Report) timeChart(id, title, yName, name, sub string, f func(stats.Point) (float64, bool)) Chart {
	s := ChartSeries{Name: name}
	for _, p := range r.Series {
		if v, ok := f(p); ok {
			s.Points = append(s.Points, [2]float64{p.T, v})
		}
	}
	s.Symbols = len(s.Points) <= 3
	return Chart{ID: id, Title: title, Subtitle: sub + "; " + r.samplingNote(), XName: timeAxis, YName: yName,
		Series: []ChartSeries{s}, Marks: r.phaseMarks()}
}

// connChart plots the clients connected as the bench saw them and the
// server's own count at each snapshot.
func (r *Report) connChart() Chart {
	c := r.timeChart("connections", "connections over time", "connections", SeriesClients,
		"bench side: the clients' connections up", func(p stats.Point) (float64, bool) { return float64(p.Conns), true })
	srv := ChartSeries{Name: SeriesServerConns, Symbols: true}
	if sv := r.Server; sv != nil {
		for _, name := range sv.Order {
			snap := sv.Snapshots[name]
			if v, ok := snap.Metric(serverstat.Connections); ok {
				srv.Points = append(srv.Points, [2]float64{snap.At.Sub(r.Started).Seconds(), v})
			}
		}
	}
	if len(srv.Points) > 0 {
		c.Series = append(c.Series, srv)
		c.Subtitle += "\nserver: wspush_connections from /metrics (summed over nodes) at each snapshot (" + strings.Join(r.Server.Order, ", ") + ")"
	}
	return c
}

func lastSubChart(msgs []MessageLast) Chart {
	s := ChartSeries{Name: SeriesLastSub, Symbols: len(msgs) <= 200}
	for _, m := range msgs {
		if m.Deliveries > 0 {
			s.Points = append(s.Points, [2]float64{float64(m.Index), m.LastMs})
		}
	}
	return Chart{ID: "last_subscriber", Title: "time until the last subscriber, per message",
		Subtitle: "bench side: the largest receive time − send time over each message's deliveries",
		XName:    "message, in publish order", YName: "ms", Series: []ChartSeries{s}}
}

// hasDeliveries tells whether any sampled point counted a delivery.
func (r *Report) hasDeliveries() bool {
	for _, p := range r.Series {
		if p.Deliveries > 0 {
			return true
		}
	}
	return false
}

// phaseMarks are the run's phase boundaries, from the sampled points.
func (r *Report) phaseMarks() []Mark {
	var out []Mark
	for _, p := range r.Series {
		if p.Phase != "" {
			out = append(out, Mark{Name: p.Phase, X: p.T})
		}
	}
	return out
}

// samplingNote says how many points the series has.
func (r *Report) samplingNote() string {
	return fmt.Sprintf("%d samples over %.2f s, phase boundaries marked", len(r.Series), r.Seconds)
}
