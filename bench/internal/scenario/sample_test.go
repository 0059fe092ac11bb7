package scenario

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
)

func TestSampleStep(t *testing.T) {
	for _, c := range []struct {
		elapsed, limit, want time.Duration
	}{
		{0, time.Second, minSampleStep},
		{500 * time.Millisecond, time.Second, minSampleStep},
		{5 * time.Second, time.Second, 100 * time.Millisecond},
		{time.Minute, time.Second, time.Second},
		{time.Minute, 0, time.Second},
		{0, 5 * time.Millisecond, 5 * time.Millisecond},
	} {
		if got := sampleStep(c.elapsed, c.limit); got != c.want {
			t.Errorf("sampleStep(%v, %v) = %v, want %v", c.elapsed, c.limit, got, c.want)
		}
	}
	if got := (&Common{Interval: time.Second}).statEvery(); got != minSampleStep/2 {
		t.Errorf("statEvery %v, want %v", got, minSampleStep/2)
	}
}

// TestConnsFor: a mark's known count stands in for a live count that lags
// behind it, briefly; once the live count has caught up, it is used as is.
func TestConnsFor(t *testing.T) {
	r := &run{c: &Common{Interval: time.Second}}
	if got := r.connsFor(5, noConnOverride); got != 5 {
		t.Errorf("no mark: %d", got)
	}
	if got := r.connsFor(1990, 2000); got != 2000 {
		t.Errorf("mark: %d", got)
	}
	if got := r.connsFor(1990, noConnOverride); got != 2000 {
		t.Errorf("lagging live count right after the mark: %d, want 2000", got)
	}
	if got := r.connsFor(2000, noConnOverride); got != 2000 {
		t.Errorf("caught up: %d", got)
	}
	if got := r.connsFor(1500, noConnOverride); got != 1500 {
		t.Errorf("after catching up, a drop shows: %d", got)
	}
	r.connsFor(10, 20)
	time.Sleep(4 * r.c.statEvery())
	if got := r.connsFor(10, noConnOverride); got != 10 {
		t.Errorf("long after the mark: %d, want the live 10", got)
	}
}

// TestBroadcastShortRunHTML is issue 11's case: a broadcast to 2,000
// clients that lasts about a second. The page must show the connections
// reaching 2,000 (bench side, at and after the connected mark, and the
// server's count at the before snapshot), many deliveries points, and a
// point per message.
func TestBroadcastShortRunHTML(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	s := startServer(t)
	cfg := BroadcastConfig{Common: common(t, s, 2000, 1), Messages: 20, Size: 64, Publishers: 1}
	cfg.HTML = t.TempDir() + "/r.html"
	rep, err := Broadcast(context.Background(), cfg)
	assertExact(t, cfg, err, rep.Checks)
	page, err := os.ReadFile(cfg.HTML)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := report.ReadCharts(page)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]report.Chart{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	series := func(id, name string) report.ChartSeries {
		for _, s := range byID[id].Series {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("chart %q has no series %q (charts %v)", id, name, cs)
		return report.ChartSeries{}
	}
	conn := byID["connections"]
	var connected float64 = -1
	for _, m := range conn.Marks {
		if m.Name == "connected" {
			connected = m.X
		}
	}
	if connected < 0 {
		t.Fatalf("no connected mark: %v", conn.Marks)
	}
	var atConnected []float64
	for _, p := range series("connections", report.SeriesClients).Points {
		if p[0] == connected {
			atConnected = append(atConnected, p[1])
		}
	}
	if len(atConnected) == 0 || atConnected[0] != 2000 {
		t.Errorf("clients connected at the connected mark: %v, want 2000", atConnected)
	}
	if srv := series("connections", report.SeriesServerConns).Points; len(srv) == 0 || srv[0][1] != 2000 {
		t.Errorf("server connections %v, want 2000 at the before snapshot", srv)
	}
	d := series("deliveries", report.SeriesDeliveries).Points
	if len(d) <= 2 || d[len(d)-1][1] != 40000 {
		t.Errorf("deliveries: %d points ending at %v, want more than 2 ending at 40000", len(d), d[len(d)-1])
	}
	if r := series("deliveries_rate", report.SeriesRate).Points; len(r) != len(d) {
		t.Errorf("deliveries/s: %d points, deliveries %d", len(r), len(d))
	}
	if ls := series("last_subscriber", report.SeriesLastSub).Points; len(ls) != 20 {
		t.Errorf("last subscriber: %d points, want 20", len(ls))
	}
}
