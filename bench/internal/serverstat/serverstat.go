// Package serverstat owns what the load tool measures of the server under
// test from outside: its process numbers from /proc (resident memory, open
// descriptors, threads, CPU time) and the values of its Prometheus /metrics
// page. It never changes the server.
package serverstat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
)

// Proc is one reading of a process's numbers.
type Proc struct {
	// RSS is the resident set in bytes (rss of /proc/PID/stat × the page
	// size, the count VmRSS shows).
	RSS int64 `json:"rss_bytes"`
	// RSSAnon is the private anonymous part of RSS (RssAnon of
	// /proc/PID/status): heap, stacks, runtime. The rest of RSS is mostly
	// the mapped binary, whose pages processes of one binary share.
	RSSAnon int64 `json:"rss_anon_bytes"`
	// PSS is the proportional set size (Pss of /proc/PID/smaps_rollup):
	// RSS with each shared page divided among the processes mapping it,
	// so that summed over many processes of one binary it counts the
	// binary's pages once, as the machine pays them.
	PSS int64 `json:"pss_bytes"`
	// FDs is the number of open file descriptors (/proc/PID/fd).
	FDs int64 `json:"fds"`
	// Threads is num_threads of /proc/PID/stat.
	Threads int64 `json:"threads"`
	// CPU is utime+stime in seconds.
	CPU float64 `json:"cpu_s"`
}

// ReadProc reads pid's numbers from /proc (through procfs).
func ReadProc(pid int) (Proc, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Proc{}, err
	}
	st, err := p.Stat()
	if err != nil {
		return Proc{}, err
	}
	fds, err := p.FileDescriptorsLen()
	if err != nil {
		return Proc{}, err
	}
	status, err := p.NewStatus()
	if err != nil {
		return Proc{}, err
	}
	sm, err := p.ProcSMapsRollup()
	if err != nil {
		return Proc{}, err
	}
	return Proc{
		RSS: int64(st.ResidentMemory()), RSSAnon: int64(status.RssAnon), PSS: int64(sm.Pss), FDs: int64(fds),
		Threads: int64(st.NumThreads), CPU: st.CPUTime(),
	}, nil
}

// Metrics are the metric families of a Prometheus text page, by name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses the Prometheus text exposition format with expfmt's
// parser (UTF-8 names allowed). A malformed page is an error.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("serverstat: /metrics: %w", err)
	}
	return Metrics(fams), nil
}

// Sum returns the sum of the values of metric name over its series whose
// labels include every given name/value pair (labels alternate names and
// values: Sum(Dropped, "policy", "close")); with no pair, over all its
// label sets (Sum(Dropped) is every policy's drops); a trailing name
// without a value is ignored. It reports false when
// the page has no such counter, gauge or untyped metric or no series
// matches; histograms and summaries are not summed.
func (m Metrics) Sum(name string, labels ...string) (float64, bool) {
	mf, ok := m[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
	for _, s := range mf.GetMetric() {
		v, ok := value(mf.GetType(), s)
		if ok && hasLabels(s, labels) {
			sum += v
			found = true
		}
	}
	return sum, found
}

// value is a counter's, gauge's or untyped metric's value.
func value(t dto.MetricType, s *dto.Metric) (float64, bool) {
	switch t {
	case dto.MetricType_COUNTER:
		return s.GetCounter().GetValue(), true
	case dto.MetricType_GAUGE:
		return s.GetGauge().GetValue(), true
	case dto.MetricType_UNTYPED:
		return s.GetUntyped().GetValue(), true
	}
	return 0, false
}

// hasLabels tells whether s has every name/value pair of pairs.
func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
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
	// PingsSent is wspush_pings_sent_total{how="carried"|"direct"|"queued"}.
	PingsSent = "wspush_pings_sent_total"
	// PongsReceived is wspush_pongs_received_total.
	PongsReceived = "wspush_pongs_received_total"
)

// Snapshot is one measurement of the server: process numbers (when a pid
// is known) and the metrics the load tool reads (when /metrics answers).
type Snapshot struct {
	// At is when it was taken.
	At time.Time `json:"at"`
	// Proc is nil without a pid or when /proc could not be read.
	Proc *Proc `json:"proc,omitempty"`
	// Metrics holds the selected metrics that were on the page, each summed
	// over its label sets (Metrics.Sum).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Hists holds the selected histograms that were on the page
	// (DeliveryLatency, FanoutSeconds), each summed over its label sets.
	Hists map[string]Hist `json:"histograms,omitempty"`
	// Errors says what could not be measured.
	Errors []string `json:"errors,omitempty"`
}

// selected are the metrics kept in a Snapshot.
var selected = []string{HeapInuse, Goroutines, Connections, Dropped, Lost, Delivered, Published, PingsSent, PongsReceived}

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
				if v, ok := m.Sum(k); ok {
					s.Metrics[k] = v
				}
			}
			s.Hists = selectHists(m)
		}
	}
	return s
}

// selectHists returns the selected histograms on m (nil: none).
func selectHists(m Metrics) map[string]Hist {
	var out map[string]Hist
	for _, k := range selectedHists {
		if h, ok := m.Histogram(k); ok {
			if out == nil {
				out = map[string]Hist{}
			}
			out[k] = h
		}
	}
	return out
}

// Metric returns a selected metric and whether it was measured.
func (s Snapshot) Metric(name string) (float64, bool) {
	v, ok := s.Metrics[name]
	return v, ok
}
