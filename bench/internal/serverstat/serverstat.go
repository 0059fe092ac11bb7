// Package serverstat owns what the load tool measures of the server under
// test from outside: its process numbers from /proc (resident memory, open
// descriptors, threads, CPU time) and the values of its Prometheus /metrics
// page. It never changes the server.
package serverstat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// Proc is one reading of a process's numbers.
type Proc struct {
	// RSS is VmRSS in bytes.
	RSS int64 `json:"rss_bytes"`
	// FDs is the number of entries in /proc/PID/fd.
	FDs int64 `json:"fds"`
	// Threads is the Threads: line of /proc/PID/status.
	Threads int64 `json:"threads"`
	// CPU is utime+stime in seconds.
	CPU float64 `json:"cpu_s"`
}

// ReadProc reads pid's numbers from /proc.
func ReadProc(pid int) (Proc, error) {
	var p Proc
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return p, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			p.RSS = n * 1024 // the unit is kB
		case "Threads":
			p.Threads = n
		}
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, err
	}
	if p.CPU, err = parseStatCPU(stat); err != nil {
		return p, err
	}
	d, err := os.Open(dir + "/fd")
	if err != nil {
		return p, err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(4096)
		p.FDs += int64(len(names))
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// parseStatCPU returns utime+stime in seconds from a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("serverstat: bad stat line")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("serverstat: short stat line")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("serverstat: bad utime/stime")
	}
	return float64(ut+st) / clockTicks, nil
}

// Metrics are the samples of a Prometheus text page. Each series is under
// its full name with labels as written (`x_total{policy="drop"}`), and each
// metric name alone holds the sum over its label sets.
type Metrics map[string]float64

// Get returns the value of name (a bare metric name sums its series), and
// whether it was on the page.
func (m Metrics) Get(name string) (float64, bool) {
	v, ok := m[name]
	return v, ok
}

// ParseMetrics parses the Prometheus text exposition format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var series, rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			series, rest = line[:j+1], line[j+1:]
		} else {
			sp := strings.IndexAny(line, " \t")
			if sp < 0 {
				continue
			}
			series, rest = line[:sp], line[sp:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		m[series] = v
		if name, _, ok := strings.Cut(series, "{"); ok {
			m[name] += v
		}
	}
	return m, sc.Err()
}

// FetchMetrics GETs http://api/metrics and parses it.
func FetchMetrics(ctx context.Context, api string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("serverstat: GET /metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ForceGC asks the server for a garbage collection through
// GET http://api/debug/pprof/heap?gc=1 (wspushd with --pprof), so that the
// heap figures of the next snapshot hold live memory only.
func ForceGC(ctx context.Context, api string) error {
	return Pprof(ctx, api, "heap?gc=1", 30*time.Second, io.Discard)
}

// Pprof copies GET http://api/debug/pprof/endpoint (e.g. "heap?gc=1",
// "profile?seconds=20") of a server run with --pprof into w, within
// timeout. Nothing is written to w unless the server answers 200.
func Pprof(ctx context.Context, api, endpoint string, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+"/debug/pprof/"+endpoint, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("serverstat: GET /debug/pprof/%s: %s (is --pprof on?)", endpoint, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Names of the metrics the load tool reads.
const (
	HeapInuse   = "go_memstats_heap_inuse_bytes"
	Goroutines  = "go_goroutines"
	Connections = "wspush_connections"
	Dropped     = "wspush_messages_dropped_total"
	Lost        = "wspush_messages_lost_total"
	Delivered   = "wspush_messages_delivered_total"
	Published   = "wspush_messages_published_total"
)

// Snapshot is one measurement of the server: process numbers (when a pid
// is known) and the metrics the load tool reads (when /metrics answers).
type Snapshot struct {
	// At is when it was taken.
	At time.Time `json:"at"`
	// Proc is nil without a pid or when /proc could not be read.
	Proc *Proc `json:"proc,omitempty"`
	// Metrics holds the selected metrics that were on the page.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Errors says what could not be measured.
	Errors []string `json:"errors,omitempty"`
}

// selected are the metrics kept in a Snapshot.
var selected = []string{HeapInuse, Goroutines, Connections, Dropped, Lost, Delivered, Published}

// Take measures the server: /proc for pid > 0, /metrics when api is set.
func Take(ctx context.Context, pid int, api string) Snapshot {
	s := Snapshot{At: time.Now()}
	if pid > 0 {
		p, err := ReadProc(pid)
		if err != nil {
			s.Errors = append(s.Errors, err.Error())
		} else {
			s.Proc = &p
		}
	}
	if api != "" {
		m, err := FetchMetrics(ctx, api)
		if err != nil {
			s.Errors = append(s.Errors, err.Error())
		} else {
			s.Metrics = map[string]float64{}
			for _, k := range selected {
				if v, ok := m.Get(k); ok {
					s.Metrics[k] = v
				}
			}
		}
	}
	return s
}

// Metric returns a selected metric and whether it was measured.
func (s Snapshot) Metric(name string) (float64, bool) {
	v, ok := s.Metrics[name]
	return v, ok
}
