package suite

// What a suite run found: the runs, their medians, check counts, ratios and
// targets (summarize), and recomputing them from a stored run's JSON.

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
)

// RunRecord is one scenario run against one server in one round.
type RunRecord struct {
	// Round counts from 1.
	Round int `json:"round"`
	// Server and Scenario name the run.
	Server string `json:"server"`
	// Scenario is the scenario ID.
	Scenario string `json:"scenario"`
	// Command is the exact command line run.
	Command []string `json:"command,omitempty"`
	// Seconds is the run's wall time.
	Seconds float64 `json:"seconds"`
	// Exit is bench's exit status (0 ok, 1 error, 3 a check failed; -1 not run).
	Exit int `json:"exit"`
	// Error says why there are no (or partial) results.
	Error string `json:"error,omitempty"`
	// Pass is the report's delivery-check verdict (nil: no checks).
	Pass *bool `json:"pass,omitempty"`
	// Verdict explains Pass.
	Verdict string `json:"verdict,omitempty"`
	// Metrics are Extract's figures.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// JSON, Log and Profile are the run's files.
	JSON string `json:"json,omitempty"`
	// Log is the scenario's output.
	Log string `json:"log,omitempty"`
	// Profile is the server's CPU profile, when taken.
	Profile string `json:"profile,omitempty"`
	// Notes are the report's notes.
	Notes []string `json:"notes,omitempty"`
	// ClientCPU is the CPU time (user+system) of the bench process and its
	// client children, in seconds (0: unknown).
	ClientCPU float64 `json:"client_cpu_s,omitempty"`
}

// addClientCPU puts the clients' CPU per million deliveries of a
// throughput run into its metrics.
func (r *RunRecord) addClientCPU(rep *report.Report) {
	if r.Scenario == ScThroughput && r.ClientCPU > 0 && rep.Throughput != nil && rep.Throughput.Deliveries > 0 {
		r.Metrics["client_cpu_s_per_million"] = r.ClientCPU / (float64(rep.Throughput.Deliveries) / 1e6)
	}
}

// ServerRun is one start and stop of a server.
type ServerRun struct {
	// Round and Server name it.
	Round int `json:"round"`
	// Server is the server's name.
	Server string `json:"server"`
	// Endpoint is where it listened.
	Endpoint Endpoint `json:"endpoint"`
	// Stopped says how it exited.
	Stopped string `json:"stopped,omitempty"`
	// Error is a start or stop failure.
	Error string `json:"error,omitempty"`
	// Log is its output.
	Log string `json:"log"`
}

// CheckCount counts a (server, scenario)'s runs and passed checks.
type CheckCount struct {
	// Runs with checks, and how many passed.
	Runs int `json:"runs"`
	// Passed counts passing runs.
	Passed int `json:"passed"`
}

// RunInfo is what every recorded comparison (a suite run, a cluster
// comparison) says about itself. Embedded, its fields sit at the top level
// of the JSON.
type RunInfo struct {
	// Started is when the run began.
	Started time.Time `json:"started"`
	// Seconds is the run's wall time, set by finish.
	Seconds float64 `json:"seconds"`
	// Command is the command line.
	Command []string `json:"command"`
	// Machine describes where it ran.
	Machine Machine `json:"machine"`
}

// startRun begins a RunInfo now.
func startRun(command []string, m Machine) RunInfo {
	return RunInfo{Started: time.Now(), Command: command, Machine: m}
}

// finish records the wall time since Started.
func (r *RunInfo) finish() { r.Seconds = time.Since(r.Started).Seconds() }

// Results is everything a suite run found.
type Results struct {
	RunInfo
	// Quick tells which sizes ran; Rounds how many rounds.
	Quick bool `json:"quick"`
	// Rounds is the number of rounds asked for.
	Rounds int `json:"rounds"`
	// Ref is the reference server.
	Ref string `json:"ref"`
	// Servers are the servers, variants included, in turn order.
	Servers []ServerSpec `json:"servers"`
	// Scenarios are the steps, with their flags.
	Scenarios []Scenario `json:"scenarios"`
	// Runs are every scenario run.
	Runs []RunRecord `json:"runs"`
	// ServerRuns are every server start.
	ServerRuns []ServerRun `json:"server_runs"`
	// Table holds the medians.
	Table Table `json:"medians"`
	// Checks counts passed checks per server and scenario.
	Checks map[string]map[string]*CheckCount `json:"checks"`
	// Ratios compare Ref with each peer.
	Ratios []Ratio `json:"ratios"`
	// Targets are the standard targets, judged.
	Targets []TargetResult `json:"targets"`
	// RawDir holds the per-run files.
	RawDir string `json:"raw_dir"`
	// Resummarized is the command that summarized these runs again (--from).
	Resummarized []string `json:"resummarized,omitempty"`
}

// Errors counts runs that failed to produce results.
func (r *Results) Errors() int {
	n := 0
	for _, x := range r.Runs {
		if x.Error != "" {
			n++
		}
	}
	for _, s := range r.ServerRuns {
		if s.Error != "" {
			n++
		}
	}
	return n
}

// peers are the servers the reference is compared with: every peer-kind
// server.
func (r *Results) peers() []string {
	var out []string
	for _, s := range r.Servers {
		if s.Name != r.Ref && s.Kind == KindPeer {
			out = append(out, s.Name)
		}
	}
	return out
}

// summarize fills the medians, check counts, ratios and targets from Runs.
func (r *Results) summarize() {
	r.Table = Aggregate(r.Runs)
	r.Checks = map[string]map[string]*CheckCount{}
	for _, x := range r.Runs {
		if x.Pass == nil {
			continue
		}
		if r.Checks[x.Server] == nil {
			r.Checks[x.Server] = map[string]*CheckCount{}
		}
		c := r.Checks[x.Server][x.Scenario]
		if c == nil {
			c = &CheckCount{}
			r.Checks[x.Server][x.Scenario] = c
		}
		c.Runs++
		if *x.Pass {
			c.Passed++
		}
	}
	r.Ratios = Ratios(r.Table, r.Ref, r.peers())
	r.Targets = Judge(r.Table, r.Ref, Targets)
}

// Resummarize reads a previous run's JSON, extracts every run's metrics
// again from its report file (runs whose file is gone keep theirs), and
// recomputes the medians, ratios and targets.
func Resummarize(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.JSON == "" {
			continue
		}
		if rep, err := ReadReport(r.JSON); err == nil {
			r.Metrics = Extract(r.Scenario, rep)
			r.addClientCPU(rep)
		}
	}
	res.summarize()
	return &res, nil
}
