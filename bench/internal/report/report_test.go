package report

import (
	"bytes"
	"encoding/json"
	"os"
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
		Churn:          &Churn{Cycles: 3},
		Server:         &Server{PID: 1},
		Notes:          []string{"a note"},
		Series:         []stats.Point{{T: 0, Conns: 1}, {T: 1, Conns: 10, Rate: 5, ServerRSS: 1 << 20}},
		CDF:            h.CDF(100),
		CDFName:        "delivery latency",
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
	for _, want := range []string{"== broadcast", "-- clients", "refused=1", "-- checks", "PASS: fine <&>", "server dropped / lost", "n/a", "per connection: fds", "a note", "rss 1.0 MiB"} {
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
	for _, want := range []string{"latency CDF", "connections over time", "server RSS over time", "deliveries per second", "fine &lt;&amp;&gt;", "echarts.init"} {
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
