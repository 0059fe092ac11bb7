package report

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func sample() *Report {
	h := stats.NewHist()
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * 100 * time.Microsecond)
	}
	sum := h.Summarize()
	r := &Report{
		Scenario: "broadcast", Seconds: 1.5, Params: map[string]int{"n": 10},
		Clients:        &Clients{Procs: 2, Target: 10, Up: 10, Failures: stats.Causes{"refused": 1}},
		Handshake:      &sum,
		Latency:        &sum,
		LastSubscriber: &LastSub{Messages: 5, Complete: 5, MedianMs: 1, P99Ms: 2, MaxMs: 3},
		Checks:         &Checks{Expected: 50, Received: 50, Pass: true, Verdict: "fine <&>", ServerDropped: -1},
		Publish:        &Publish{Sent: 5, API: sum},
		Throughput:     &Throughput{Deliveries: 50, Seconds: 1, DeliveriesPerSec: 50, ServerCPUSeconds: 0.5},
		Cost: &DeliveryCost{Compression: true, Deliveries: 50, WireBytes: 20000, MessageBytes: 51200, Compressed: 50,
			WireBytesPerDelivery: 400, MessageBytesPerDelivery: 1024, ServerCPUSeconds: 0.001, ServerCPUUsPerDelivery: 20},
		Churn:   &Churn{Cycles: 3},
		Server:  &Server{PID: 1},
		Notes:   []string{"a note"},
		Series:  []stats.Point{{T: 0, Conns: 1}, {T: 1, Conns: 10, Deliveries: 5, ServerRSS: 1 << 20}},
		CDF:     h.CDF(100),
		CDFName: "delivery latency",
	}
	r.Server.Add("before", serverstat.Snapshot{Proc: &serverstat.Proc{RSS: 1 << 20, FDs: 3}, Metrics: map[string]float64{serverstat.Goroutines: 4}})
	r.Server.PerConn = map[string]float64{"fds": 1}
	return r
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== broadcast", "-- clients", "refused=1", "-- checks", "PASS: fine <&>", "server dropped / lost", "n/a", "per connection: fds", "a note", "rss 1.0 MiB",
		"-- per delivery", "50 messages came compressed", "400.0 per delivery (20000 over 50 deliveries)", "1024.0 per delivery (inflated)", "20.000 µs per delivery"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestHTMLAndJSON(t *testing.T) {
	r := sample()
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if strings.Contains(s, "<script src=") {
		t.Error("the page loads a script from elsewhere")
	}
	for _, want := range []string{"latency CDF", "connections over time", "server RSS over time", "deliveries per second", "deliveries received (cumulative)", "fine &lt;&amp;&gt;", "echarts.init"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	path := t.TempDir() + "/r.json"
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["scenario"] != "broadcast" || back["checks"].(map[string]any)["pass"] != true {
		t.Fatalf("%v", back)
	}
}

func TestProgressOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := NewProgress(f)
	p.Update("x %d", 1)
	p.Done()
	var nilP *Progress
	nilP.Update("y")
	nilP.Done()
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Fatal("progress written to a file")
	}
}

// shortRun is a report of a short broadcast run as the scenario fills it
// in: 2,000 clients, 20 messages, sampled every 20 ms, with phase points
// and the server's snapshots.
func shortRun() *Report {
	start := time.Unix(1000, 0)
	r := &Report{Scenario: "broadcast", Started: start, Seconds: 0.7, Server: &Server{}}
	var s stats.Series
	for i := 0; i <= 35; i++ {
		t := float64(i) * 0.02
		p := stats.Point{T: t, Conns: min(int64(i)*200, 2000)}
		if t > 0.3 {
			p.Deliveries = min(int64((t-0.3)*100000), 40000)
		}
		if i == 10 {
			p.Phase = "connected"
		}
		s.Add(p)
	}
	r.Series = s.Points()
	r.Server.Add("before", serverstat.Snapshot{At: start.Add(210 * time.Millisecond), Metrics: map[string]float64{serverstat.Connections: 2000}})
	r.Server.Add("after", serverstat.Snapshot{At: start.Add(690 * time.Millisecond), Metrics: map[string]float64{serverstat.Connections: 0}})
	r.LastSubscriber = &LastSub{Messages: 20, Complete: 20}
	for i := range 20 {
		r.LastSubscriber.PerMessage = append(r.LastSubscriber.PerMessage, MessageLast{Index: i, Deliveries: 2000, LastMs: float64(10 + i)})
	}
	return r
}

func chartByID(t *testing.T, cs []Chart, id string) Chart {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no chart %q", id)
	return Chart{}
}

func seriesByName(t *testing.T, c Chart, name string) ChartSeries {
	t.Helper()
	for _, s := range c.Series {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("chart %s has no series %q", c.ID, name)
	return ChartSeries{}
}

func maxY(s ChartSeries) float64 {
	var m float64
	for _, p := range s.Points {
		m = max(m, p[1])
	}
	return m
}

// TestChartsShortRun checks what the page draws for a sub-second run:
// connections reach 2,000 on both the bench's and the server's series,
// deliveries have a point per sample, phases are marked, and each message
// has its own point.
func TestChartsShortRun(t *testing.T) {
	cs := shortRun().Charts()
	conn := chartByID(t, cs, "connections")
	if m := maxY(seriesByName(t, conn, SeriesClients)); m != 2000 {
		t.Errorf("clients connected reach %v, want 2000", m)
	}
	srv := seriesByName(t, conn, SeriesServerConns)
	if want := [][2]float64{{0.21, 2000}, {0.69, 0}}; !reflect.DeepEqual(srv.Points, want) || !srv.Symbols {
		t.Errorf("server connections %v (symbols %v), want %v", srv.Points, srv.Symbols, want)
	}
	if len(conn.Marks) != 1 || conn.Marks[0] != (Mark{Name: "connected", X: 0.2}) {
		t.Errorf("marks %v", conn.Marks)
	}
	d := seriesByName(t, chartByID(t, cs, "deliveries"), SeriesDeliveries)
	if len(d.Points) != 36 || maxY(d) != 40000 {
		t.Errorf("deliveries: %d points up to %v", len(d.Points), maxY(d))
	}
	rate := seriesByName(t, chartByID(t, cs, "deliveries_rate"), SeriesRate)
	if len(rate.Points) != 36 || maxY(rate) < 90000 || maxY(rate) > 110000 {
		t.Errorf("rate: %d points, max %v (want about 100,000/s)", len(rate.Points), maxY(rate))
	}
	ls := seriesByName(t, chartByID(t, cs, "last_subscriber"), SeriesLastSub)
	if len(ls.Points) != 20 || ls.Points[19] != [2]float64{19, 29} {
		t.Errorf("last subscriber %v", ls.Points)
	}
	for _, c := range cs {
		if c.Title == "" || c.Subtitle == "" || c.XName == "" || c.YName == "" {
			t.Errorf("chart %s is not labelled: %+v", c.ID, c)
		}
	}
}

// TestReadChartsRoundTrip reads the charts back from the rendered page:
// the page holds exactly the data Charts built.
func TestReadChartsRoundTrip(t *testing.T) {
	for _, r := range []*Report{shortRun(), sample()} {
		page, err := r.HTML()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadCharts(page)
		if err != nil {
			t.Fatal(err)
		}
		if want := r.Charts(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read back\n%+v\nwant\n%+v", r.Scenario, got, want)
		}
	}
	if _, err := ReadCharts([]byte("<html></html>")); err == nil {
		t.Error("a page without charts was read")
	}
}

func TestChartsLeaveOutEmpty(t *testing.T) {
	r := &Report{Scenario: "connect", Series: []stats.Point{{T: 0}, {T: 1, Conns: 5}}}
	var ids []string
	for _, c := range r.Charts() {
		ids = append(ids, c.ID)
	}
	if !reflect.DeepEqual(ids, []string{"connections"}) {
		t.Errorf("charts %v, want connections only (no deliveries, RSS or CDF)", ids)
	}
}

func TestTableServerLatency(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    *ServerLatency
		want []string
	}{
		{"measured", &ServerLatency{Exported: true, Samples: 20, Deliveries: 2000, DeliveryP50Ms: 0.5, DeliveryP99Ms: 1.5, FanoutP50Ms: 1, FanoutP99Ms: 2,
			Agreement: Agreement{Status: AgreePass, Verdict: "agrees", UnseenMs: 0.25, FanoutUnseenMs: 0.5, BoundMs: 6}},
			[]string{"server-measured per delivery  p50 0.500  p99 1.500 ms  (n=2000", "p50 1.000  p99 2.000 ms over 20 sampled publishes",
				"clients minus server p50", "0.250 ms per delivery, 0.500 ms last subscriber − fan-out (bound 6.0 ms)", "latency agreement", "pass: agrees"}},
		{"a peer", &ServerLatency{Agreement: Agreement{Status: AgreeNA, Verdict: "no histograms"}},
			[]string{"server-measured  ", "n/a", "latency agreement", "n/a: no histograms"}},
	} {
		r := sample()
		r.ServerLatency = tc.l
		var b bytes.Buffer
		if err := r.WriteTable(&b); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: table lacks %q:\n%s", tc.name, w, b.String())
			}
		}
	}
}

// TestChartsHTML renders charts that are not a Report's, on a numeric x
// axis, and reads them back: the page holds exactly those charts, with the
// text above them escaped, and no text block when there is none.
func TestChartsHTML(t *testing.T) {
	cs := []Chart{
		{ID: "per_n", Title: "cost against N", Subtitle: "two lines", XName: "connections", YName: "bytes",
			Series: []ChartSeries{
				{Name: "a", Points: [][2]float64{{100000, 3100.5}, {250000, 3050}, {1000000, 2990}}, Symbols: true},
				{Name: "b", Points: [][2]float64{{250000, 12}}, Symbols: true},
			}},
		{ID: "other", Title: "t", XName: "x", YName: "y", Series: []ChartSeries{{Name: "c", Points: [][2]float64{{1, 2}}}}},
	}
	page, err := ChartsHTML("title <x>", "| N | <b> & c |", cs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadCharts(page)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cs) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, cs)
	}
	s := string(page)
	for _, want := range []string{"<title>title &lt;x&gt;</title>", "<pre style=\"font-size:13px\">| N | &lt;b&gt; &amp; c |</pre>", `"xAxis":[{"type":"value","name":"connections"`} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(s, "<script src=") {
		t.Error("the page loads a script from elsewhere")
	}
	bare, err := ChartsHTML("t", "", cs[1:])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bare, []byte("<pre")) {
		t.Error("a page without text has a text block")
	}
}
