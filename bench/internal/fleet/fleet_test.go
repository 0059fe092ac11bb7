package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestShares(t *testing.T) {
	for _, tc := range []struct {
		total, n int
		want     string
	}{
		{10, 3, "[4 3 3]"},
		{2, 4, "[1 1 0 0]"},
		{0, 2, "[0 0]"},
		{7, 1, "[7]"},
		{5, 0, "[5]"},
	} {
		got := Shares(tc.total, tc.n)
		if fmt.Sprint(got) != tc.want {
			t.Errorf("Shares(%d, %d) = %v, want %s", tc.total, tc.n, got, tc.want)
		}
	}
}

func TestSourceIP(t *testing.T) {
	base := net.IPv4(127, 0, 0, 2)
	for i, want := range map[int]string{0: "127.0.0.2", 1: "127.0.0.3", 253: "127.0.0.255", 254: "127.0.1.0", 300: "127.0.1.46"} {
		ip, err := SourceIP(base, i)
		if err != nil || ip.String() != want {
			t.Errorf("SourceIP(+%d) = %v %v, want %s", i, ip, err, want)
		}
	}
	if _, err := SourceIP(net.IPv4(10, 0, 0, 1), 0); err == nil {
		t.Error("a base outside 127/8 was accepted")
	}
	if _, err := SourceIP(net.IPv4(127, 255, 255, 250), 10); err == nil {
		t.Error("an address past 127/8 was accepted")
	}
}

// TestSplit checks the fan-out: every connection goes to exactly one
// process, run-wide indexes are contiguous, source addresses are distinct,
// and rates are divided.
func TestSplit(t *testing.T) {
	base := Spec{Mode: ModeHold, Topics: []string{"a", "b", "c"}, Conns: 10001, Slow: 5, DialRate: 900, DialConcurrency: 64}
	specs, err := Split(base, 4, 2, net.IPv4(127, 0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 4 {
		t.Fatalf("%d specs", len(specs))
	}
	seen := map[string]bool{}
	nextConn, nextSlow, conns, slow := 0, 0, 0, 0
	for i, s := range specs {
		if s.Index != i || s.First != nextConn || s.FirstSlow != nextSlow {
			t.Errorf("spec %d: index %d first %d firstSlow %d, want %d %d", i, s.Index, s.First, s.FirstSlow, nextConn, nextSlow)
		}
		nextConn += s.Conns
		nextSlow += s.Slow
		conns += s.Conns
		slow += s.Slow
		if s.DialRate != 225 || s.DialConcurrency != 16 {
			t.Errorf("spec %d: rate %v concurrency %d", i, s.DialRate, s.DialConcurrency)
		}
		if len(s.Sources) != 2 {
			t.Errorf("spec %d: sources %v", i, s.Sources)
		}
		for _, a := range s.Sources {
			if seen[a] {
				t.Errorf("source %s used twice", a)
			}
			seen[a] = true
		}
		if len(s.Topics) != 3 {
			t.Errorf("spec %d topics %v", i, s.Topics)
		}
	}
	if conns != base.Conns || slow != base.Slow {
		t.Errorf("split %d+%d, want %d+%d", conns, slow, base.Conns, base.Slow)
	}
	if specs[0].Sources[0] != "127.0.0.2" || specs[3].Sources[1] != "127.0.0.9" {
		t.Errorf("sources %v ... %v", specs[0].Sources, specs[3].Sources)
	}
	specs[0].Topics[0] = "changed"
	if specs[1].Topics[0] != "a" {
		t.Error("specs share their topic slice")
	}
	if _, err := Split(Spec{Conns: PerProcessLimit() + 1}, 1, 1, net.IPv4(127, 0, 0, 2)); err == nil {
		t.Error("more connections than one process can hold were accepted")
	}
}

// TestMergeResults merges results that went through JSON, as children's
// do: histograms exactly, counts summed.
func TestMergeResults(t *testing.T) {
	all := stats.NewHist()
	var rs []*Result
	for c := 0; c < 3; c++ {
		h := stats.NewHist()
		for i := 0; i < 1000; i++ {
			d := time.Duration((i*7919+c*104729)%50000) * time.Microsecond
			h.Record(d)
			all.Record(d)
		}
		r := &Result{
			Procs: 1, Up: 10, Failed: 1, Failures: stats.Causes{"refused": 1}, Readers: 10,
			Counts: check.Counts{Received: 100, Missing: uint64(c)}, Latency: h.Export(),
			Msgs:           check.Msgs{MaxLatNs: [][]int64{{int64(c), 5}}, Count: [][]int64{{1, 2}}},
			ConnectStartNs: int64(100 - c), ConnectEndNs: int64(200 + c), Drained: c != 1,
			Expected: 50, TopicReaders: []int64{10}, LastRecvNs: int64(c),
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &back)
	}
	m, err := Merge(rs)
	if err != nil {
		t.Fatal(err)
	}
	if m.Procs != 3 || m.Up != 30 || m.Failed != 3 || m.Failures["refused"] != 3 || m.Counts.Received != 300 || m.Counts.Missing != 3 {
		t.Errorf("merged %+v", m.Result)
	}
	if m.ConnectStartNs != 98 || m.ConnectEndNs != 202 || m.Drained || m.Expected != 150 || m.TopicReaders[0] != 30 || m.LastRecvNs != 2 {
		t.Errorf("merged %+v", m.Result)
	}
	if m.Msgs.MaxLatNs[0][0] != 2 || m.Msgs.Count[0][1] != 6 {
		t.Errorf("msgs %+v", m.Msgs)
	}
	if got, want := m.LatencyH.Summarize(), all.Summarize(); got != want {
		t.Errorf("merged latency %+v, want %+v", got, want)
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if m.LatencyH.Quantile(q) != all.Quantile(q) {
			t.Errorf("p%v differs", q)
		}
	}
}

// TestChildProtocol runs ChildMain over pipes with a spec that dials
// nothing: SPEC in, READY out, FINISH in, RESULT out.
func TestChildProtocol(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- ChildMain(inR, outW)
		outW.Close()
	}()
	spec := Spec{Mode: ModeHold, WS: "127.0.0.1:1", Topics: []string{"t"}, StatEvery: time.Hour, MaxLife: time.Minute}
	b, _ := json.Marshal(spec)
	fmt.Fprintf(inW, "SPEC %s\n", b)
	sc := bufio.NewScanner(outR)
	sc.Buffer(nil, maxLine)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, strings.SplitN(line, " ", 2)[0])
		if strings.HasPrefix(line, lineReady) {
			fmt.Fprintf(inW, "FINISH {\"last_seq\":[0]}\n")
		}
		if strings.HasPrefix(line, lineResult) {
			var r Result
			if err := json.Unmarshal([]byte(line[len(lineResult):]), &r); err != nil {
				t.Fatal(err)
			}
			if r.Procs != 1 || !r.Drained || r.Up != 0 {
				t.Errorf("result %+v", r)
			}
		}
	}
	inW.Close()
	if c := <-code; c != 0 {
		t.Fatalf("exit code %d, lines %v", c, lines)
	}
	got := strings.Join(lines, ",")
	if !strings.Contains(got, "READY") || !strings.HasSuffix(got, "RESULT") {
		t.Fatalf("lines %v", lines)
	}
}

// TestChildAbort closes stdin before FINISH: the child must give up.
func TestChildAbort(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- ChildMain(inR, outW)
		outW.Close()
	}()
	b, _ := json.Marshal(Spec{Mode: ModeHold, StatEvery: time.Hour})
	fmt.Fprintf(inW, "SPEC %s\n", b)
	sc := bufio.NewScanner(outR)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), lineReady) {
			inW.Close()
		}
	}
	if c := <-code; c != 1 {
		t.Fatalf("exit code %d", c)
	}
}

// TestLocalFleet drives the in-process fleet through the barrier.
func TestLocalFleet(t *testing.T) {
	ctx := context.Background()
	f, err := Start(ctx, []Spec{{Mode: ModeHold, Topics: []string{"t"}, StatEvery: time.Hour}}, true, "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := f.Finish(ctx, Finish{LastSeq: []uint64{0}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Procs != 1 || m.Up != 0 {
		t.Fatalf("%+v", m.Result)
	}
	if s := f.Stat(); s.Up != 0 {
		t.Fatalf("stat %+v", s)
	}
}

func TestEndpointSpread(t *testing.T) {
	base := Spec{Mode: ModeHold, WS: "127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3", Conns: 1000}
	if eps := base.Endpoints(); len(eps) != 3 || eps[1] != "127.0.0.1:2" {
		t.Fatalf("endpoints %q", eps)
	}
	if eps := (Spec{WS: "127.0.0.1:9"}).Endpoints(); len(eps) != 1 || eps[0] != "127.0.0.1:9" {
		t.Fatalf("one endpoint: %q", eps)
	}
	for _, procs := range []int{1, 2, 3, 7} {
		specs, err := Split(base, procs, 2, net.ParseIP("127.0.0.2"))
		if err != nil {
			t.Fatal(err)
		}
		per := make([]int, 3)
		for _, s := range specs {
			ds := dialers(s)
			if len(ds) != 3 || len(ds[0]) != 2 {
				t.Fatalf("dialers %d x %d", len(ds), len(ds[0]))
			}
			for i := 0; i < s.Conns; i++ {
				d := dialerFor(ds, s.First+i, i)
				per[EndpointOf(s.First+i, 3)]++
				if want := s.Endpoints()[EndpointOf(s.First+i, 3)]; d.Addr != want {
					t.Fatalf("connection %d dials %s, want %s", s.First+i, d.Addr, want)
				}
				if src := s.Sources[i%2]; d.Source.String() != src {
					t.Fatalf("connection %d from %v, want %s", i, d.Source, src)
				}
			}
		}
		if per[0] != 334 || per[1] != 333 || per[2] != 333 {
			t.Fatalf("%d procs: spread %v", procs, per)
		}
	}
}

func TestReaderTopics(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		g      int
		topics []int
	}{
		{name: "no topics", spec: Spec{}, g: 3, topics: nil},
		{name: "one each", spec: Spec{Topics: []string{"a", "b", "c"}}, g: 4, topics: []int{1}},
		{name: "shared and group", spec: Spec{Topics: []string{"all", "g0", "g1", "g2"}, Shared: true}, g: 4, topics: []int{0, 2}},
		{name: "shared alone", spec: Spec{Topics: []string{"all"}, Shared: true}, g: 4, topics: []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.ReaderTopics(tc.g); !slices.Equal(got, tc.topics) {
				t.Fatalf("ReaderTopics(%d) = %v, want %v", tc.g, got, tc.topics)
			}
		})
	}
}
