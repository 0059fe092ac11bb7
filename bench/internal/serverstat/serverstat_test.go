package serverstat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

const page = `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+06
wspush_connections 7
wspush_messages_dropped_total{policy="drop-oldest"} 3
wspush_messages_dropped_total{policy="close"} 4
wspush_publish_fanout_seconds_bucket{le="+Inf"} 9
weird{a="x}y"} 1
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		Goroutines: 42, HeapInuse: 1234500, Connections: 7, Dropped: 7, "weird": 1,
	} {
		if got, ok := m.Sum(name); !ok || got != want {
			t.Errorf("%s = %v %v, want %v", name, got, ok, want)
		}
	}
	if _, ok := m.Sum("absent"); ok {
		t.Error("absent metric found")
	}
	if _, err := ParseMetrics(strings.NewReader("x{a=\"b} 1\n")); err == nil {
		t.Error("a malformed page was accepted")
	}
}

func TestMetricsSumLabels(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(page + `# TYPE h histogram
h_bucket{le="+Inf"} 3
h_sum 1
h_count 3
multi{a="1",b="x"} 1
multi{a="1",b="y"} 2
multi{a="2",b="x"} 4
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		labels []string
		want   float64
		ok     bool
	}{
		{nil, 7, true},
		{[]string{"a", "1"}, 3, true},
		{[]string{"b", "x"}, 5, true},
		{[]string{"a", "1", "b", "y"}, 2, true},
		{[]string{"a", "3"}, 0, false},
		{[]string{"c", "1"}, 0, false},
	} {
		if got, ok := m.Sum("multi", c.labels...); got != c.want || ok != c.ok {
			t.Errorf("Sum(multi, %q) = %v %v, want %v %v", c.labels, got, ok, c.want, c.ok)
		}
	}
	if v, ok := m.Sum(Dropped, "policy", "close"); !ok || v != 4 {
		t.Errorf("dropped{policy=close} = %v %v", v, ok)
	}
	if _, ok := m.Sum("h"); ok {
		t.Error("a histogram was summed")
	}
}

func TestReadProcSelf(t *testing.T) {
	p, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.RSS <= 0 || p.RSSAnon <= 0 || p.RSSAnon > p.RSS || p.PSS <= 0 || p.FDs < 3 || p.Threads < 1 {
		t.Fatalf("%+v", p)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Fatal("a missing pid was read")
	}
}

func TestTake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(page))
	}))
	defer srv.Close()
	api := strings.TrimPrefix(srv.URL, "http://")
	s := Take(context.Background(), os.Getpid(), api)
	if s.Proc == nil || len(s.Errors) != 0 {
		t.Fatalf("%+v", s)
	}
	if v, ok := s.Metric(Dropped); !ok || v != 7 {
		t.Fatalf("dropped %v %v", v, ok)
	}
	if _, ok := s.Metric("weird"); ok {
		t.Fatal("an unselected metric was kept")
	}
	bad := Take(context.Background(), 0, "127.0.0.1:1")
	if len(bad.Errors) != 1 || bad.Metrics != nil {
		t.Fatalf("%+v", bad)
	}
}

func TestForceGC(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/heap" || r.URL.Query().Get("gc") != "1" {
			http.NotFound(w, r)
			return
		}
		hits++
		w.Write([]byte("heap profile"))
	}))
	defer srv.Close()
	api := strings.TrimPrefix(srv.URL, "http://")
	if err := ForceGC(context.Background(), api); err != nil || hits != 1 {
		t.Errorf("ForceGC: %v, %d hits", err, hits)
	}
	off := httptest.NewServer(http.NotFoundHandler())
	defer off.Close()
	if err := ForceGC(context.Background(), strings.TrimPrefix(off.URL, "http://")); err == nil || !strings.Contains(err.Error(), "--pprof") {
		t.Errorf("without pprof: %v", err)
	}
}

func TestSplitListAndPIDs(t *testing.T) {
	if got := SplitList(" a:1, b:2,,"); len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("SplitList: %q", got)
	}
	var p PIDs
	if err := p.Set("12, 34"); err != nil || len(p) != 2 || p.First() != 12 || p.String() != "12,34" {
		t.Fatalf("PIDs: %v %v", p, err)
	}
	if err := p.Set("x"); err == nil {
		t.Fatal("PIDs accepted x")
	}
}

func TestReadProcsSums(t *testing.T) {
	one, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	two, err := ReadProcs([]int{os.Getpid(), os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if two.Threads < one.Threads || two.CPU < one.CPU || two.RSS <= 0 {
		t.Fatalf("sum of two readings %+v, one %+v", two, one)
	}
	if _, err := ReadProcs(nil); err == nil {
		t.Fatal("no pid accepted")
	}
}

func TestTakeAllSums(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(page)) }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	s := TakeAll(context.Background(), []int{os.Getpid(), os.Getpid()}, []string{addr, addr})
	if len(s.Errors) > 0 || s.Proc == nil {
		t.Fatalf("errors %v, proc %v", s.Errors, s.Proc)
	}
	if v, _ := s.Metric(Connections); v != 14 {
		t.Fatalf("connections summed over two pages: %v", v)
	}
	if v, _ := s.Metric(Dropped); v != 14 {
		t.Fatalf("dropped summed over two pages: %v", v)
	}
	one := TakeAll(context.Background(), nil, []string{addr})
	if v, _ := one.Metric(Connections); v != 7 || one.Proc != nil {
		t.Fatalf("one page: %v, proc %v", v, one.Proc)
	}
}
