// Package suite runs the load tool's standard suite against several
// servers side by side: for each round, each server in turn is started as
// a child process on free loopback ports, every standard scenario is run
// against it as a `bench SCENARIO ...` subprocess (the exact command line is
// recorded, so any number can be rerun by hand), and the server is stopped.
// Rounds interleave the servers, each round in an order rotated by one, so
// slow drifts of the machine and the after-effects of one server's run on
// the next hit them alike. The results are medians over rounds per server and metric, ratio
// tables of the reference server (wspush) against each peer, and the
// standard targets judged on those medians; they are written as a terminal
// table, JSON and Markdown.
package suite

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Persistent-writer variants of wspushd servers.
const (
	PersistentIdle = "idle" // a "<name>-persistent" server that runs connect only
	PersistentFull = "full" // ... that runs the whole suite
	PersistentOff  = "off"  // none
)

// Config drives a suite run.
type Config struct {
	// Servers are the servers to compare, in the order they take turns.
	Servers []ServerSpec
	// Rounds is the number of rounds.
	Rounds int
	// Quick uses QuickSizes instead of FullSizes.
	Quick bool
	// MD, JSON: output files (empty: none). RawDir holds every run's
	// report, the scenarios' output and the servers' logs.
	MD string
	// JSON is the JSON output file.
	JSON string
	// RawDir is the directory for per-run files (empty: next to JSON/MD).
	RawDir string
	// Ref is the server the ratios and targets are about (empty: the first).
	Ref string
	// Persistent is PersistentIdle, PersistentFull or PersistentOff.
	Persistent string
	// Only restricts the scenarios (IDs; empty: all).
	Only []string
	// Extra holds flags appended to a scenario's command, by scenario ID.
	Extra map[string][]string
	// ClientArgs holds flags appended to every scenario's command against
	// one server, by server name (its persistent variant's too).
	ClientArgs map[string][]string
	// CPUProfile is a scenario ID during which wspushd servers are
	// CPU-profiled (through --pprof) into RawDir.
	CPUProfile string
	// Exe is the bench binary run for each scenario (empty: this one).
	Exe string
	// Out receives progress and the final table (nil: os.Stdout).
	Out io.Writer
	// Command is the suite's own command line, for the record.
	Command []string
	// From is a previous run's JSON: instead of running, re-extract the
	// metrics from its per-run reports and summarize them again.
	From string

	launch       Launcher       // nil: child processes
	runStep      StepRunner     // nil: bench subprocesses
	quiesceLimit time.Duration  // 0: 30 s
	pause        time.Duration  // after quiescing; set by Run (5 s) unless a test set it
	machine      func() Machine // nil: ReadMachine
}

// Register adds the suite's flags to fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.Func("server", "server to run, `name=path [args]` (repeatable; a binary named wspushd* is started as wspushd, with --ping-interval "+
		WspushdPingInterval.String()+" unless args set it, so that connect's second idle-memory reading, "+KeepaliveHold.String()+
		" later, comes after three ping intervals, and --latency-sample "+WspushdLatencySample.String()+
		" unless args set it, so that every paced broadcast publish is sampled for the server's own latency histograms,"+
		" which the broadcasts compare with the clients' figures; anything else as a bench peer)", func(s string) error {
		sp, err := ParseServerSpec(s)
		if err == nil {
			c.Servers = append(c.Servers, sp)
		}
		return err
	})
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds; each runs every server in turn")
	fs.BoolVar(&c.Quick, "quick", false, "shrink every scenario (2,000 connections, 5 s) for a fast check")
	fs.StringVar(&c.MD, "out-md", "", "write the results as Markdown to `file`")
	fs.StringVar(&c.JSON, "json", "", "write the results as JSON to `file`")
	fs.StringVar(&c.RawDir, "raw-dir", "", "`dir` for each run's report and logs (default: FILE.raw next to --json or --out-md)")
	fs.StringVar(&c.Ref, "ref", "", "server the ratios and targets are about (default: the first --server)")
	fs.StringVar(&c.Persistent, "persistent", PersistentIdle, "wspushd servers also run with --writer persistent as NAME-persistent: idle (connect only), full, or off")
	fs.Func("only", "run only these scenarios (comma-separated: connect,churn,broadcast-small,broadcast-large,throughput,slow,recover)", func(s string) error {
		c.Only = append(c.Only, strings.Split(s, ",")...)
		return nil
	})
	fs.Func("extra", "append flags to one scenario, `id=flags` (repeatable), e.g. throughput='--duration 10s'", func(s string) error {
		id, flags, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want id=flags")
		}
		if c.Extra == nil {
			c.Extra = map[string][]string{}
		}
		c.Extra[id] = append(c.Extra[id], strings.Fields(flags)...)
		return nil
	})
	fs.Func("client-args", "append flags to every scenario run against one server, `name=flags` (repeatable), "+
		"e.g. wspush-z=--compression for a server started with --compression", func(s string) error {
		name, flags, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want name=flags")
		}
		if c.ClientArgs == nil {
			c.ClientArgs = map[string][]string{}
		}
		c.ClientArgs[name] = append(c.ClientArgs[name], strings.Fields(flags)...)
		return nil
	})
	fs.StringVar(&c.From, "from", "", "instead of running, re-read a previous --json `file` and its per-run reports; metrics, medians, ratios and targets are computed again")
	fs.StringVar(&c.CPUProfile, "cpu-profile", "", "CPU-profile wspushd servers during scenario `id` (into the raw dir)")
}

// validate checks c and fills defaults.
func (c *Config) validate() error {
	if c.From != "" {
		return nil
	}
	if len(c.Servers) == 0 {
		return errors.New("at least one --server is needed")
	}
	if c.Rounds < 1 || c.Rounds > 100 {
		return errors.New("--rounds must be 1-100")
	}
	seen := map[string]bool{}
	for _, s := range c.Servers {
		if seen[s.Name] {
			return fmt.Errorf("--server name %q given twice", s.Name)
		}
		seen[s.Name] = true
	}
	if c.Ref == "" {
		c.Ref = c.Servers[0].Name
	}
	for name := range c.ClientArgs {
		if !seen[name] {
			return fmt.Errorf("--client-args: %q is not a --server", name)
		}
	}
	if !seen[c.Ref] {
		return fmt.Errorf("--ref %q is not a --server", c.Ref)
	}
	switch c.Persistent {
	case "":
		c.Persistent = PersistentIdle
	case PersistentIdle, PersistentFull, PersistentOff:
	default:
		return fmt.Errorf("--persistent %q: want idle, full or off", c.Persistent)
	}
	ids := map[string]bool{}
	for _, s := range Plan(FullSizes) {
		ids[s.ID] = true
	}
	for _, id := range c.Only {
		if !ids[id] {
			return fmt.Errorf("--only: unknown scenario %q", id)
		}
	}
	for id := range c.Extra {
		if !ids[id] {
			return fmt.Errorf("--extra: unknown scenario %q", id)
		}
	}
	if c.CPUProfile != "" && !ids[c.CPUProfile] {
		return fmt.Errorf("--cpu-profile: unknown scenario %q", c.CPUProfile)
	}
	return nil
}

// entries are the servers to run, with the persistent-writer variants
// added right after their wspushd.
func (c *Config) entries() []ServerSpec {
	var out []ServerSpec
	for _, s := range c.Servers {
		if s.Kind == KindWspushd {
			s.Args = wspushdDefaults(s.Args)
		}
		s.ClientArgs = c.ClientArgs[s.Name]
		out = append(out, s)
		if s.Kind != KindWspushd || c.Persistent == PersistentOff || slices.ContainsFunc(s.Args, func(a string) bool {
			return strings.HasPrefix(strings.TrimLeft(a, "-"), "writer")
		}) {
			continue
		}
		v := ServerSpec{Name: s.Name + "-persistent", Path: s.Path, Kind: s.Kind,
			Args: append(slices.Clone(s.Args), "--writer", "persistent"), Only: s.Only, ClientArgs: s.ClientArgs}
		if c.Persistent == PersistentIdle {
			v.Only = []string{ScConnect}
		}
		out = append(out, v)
	}
	return out
}

// wspushdDefaults puts --ping-interval WspushdPingInterval and
// --latency-sample WspushdLatencySample before a wspushd's own arguments,
// each unless they set it themselves.
func wspushdDefaults(args []string) []string {
	var pre []string
	for _, d := range [][2]string{{"ping-interval", WspushdPingInterval.String()}, {"latency-sample", WspushdLatencySample.String()}} {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), d[0]) }) {
			pre = append(pre, "--"+d[0], d[1])
		}
	}
	return append(pre, args...)
}

// plan is the standard suite at the configured size, restricted by Only,
// with the Extra flags (which the titles then name, since they may change
// the sizes).
func (c *Config) plan() []Scenario {
	sz := FullSizes
	if c.Quick {
		sz = QuickSizes
	}
	var out []Scenario
	for _, s := range Plan(sz) {
		if len(c.Only) == 0 || slices.Contains(c.Only, s.ID) {
			if extra := c.Extra[s.ID]; len(extra) > 0 {
				s.Args = append(s.Args, extra...)
				s.Title += " + " + strings.Join(extra, " ")
			}
			out = append(out, s)
		}
	}
	return out
}

// runs tells whether server s runs scenario id (a WspushdOnly scenario
// runs against wspushd servers only).
func runs(s ServerSpec, id string) bool {
	if s.Kind != KindWspushd && slices.ContainsFunc(Plan(FullSizes), func(sc Scenario) bool { return sc.ID == id && sc.WspushdOnly }) {
		return false
	}
	return len(s.Only) == 0 || slices.Contains(s.Only, id)
}

// Run runs the suite and writes its outputs. The error is about the
// outputs or the configuration; failed runs are in the Results.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = os.Stdout
	}
	if cfg.From != "" {
		res, err := Resummarize(cfg.From)
		if err != nil {
			return nil, err
		}
		res.Resummarized = cfg.Command
		return res, writeOutputs(cfg, res, out)
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Exe = exe
	}
	if cfg.launch == nil {
		cfg.launch = launchProcess(15*time.Second, 15*time.Second)
	}
	if cfg.runStep == nil {
		cfg.runStep = runBench
	}
	if cfg.machine == nil {
		cfg.machine = ReadMachine
	}
	if cfg.pause == 0 {
		// wspushd's worker pool retires workers idle for 2 s, on a 2 s tick.
		cfg.pause = 5 * time.Second
	}
	raw, err := rawDir(cfg)
	if err != nil {
		return nil, err
	}
	res := &Results{RunInfo: startRun(cfg.Command, cfg.machine()), Quick: cfg.Quick, Rounds: cfg.Rounds,
		Ref: cfg.Ref, Servers: cfg.entries(), Scenarios: cfg.plan(), RawDir: raw}
	fmt.Fprintf(out, "suite: %d rounds × %d servers, %d scenarios; per-run files in %s\n", cfg.Rounds, len(res.Servers), len(res.Scenarios), raw)
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		for _, i := range roundOrder(len(res.Servers), round) {
			if ctx.Err() != nil {
				break
			}
			cfg.runServer(ctx, res, round, res.Servers[i], out)
		}
	}
	res.finish()
	res.summarize()
	return res, errors.Join(ctx.Err(), writeOutputs(cfg, res, out))
}

// roundOrder is the order in which round (1-based) runs n servers: the
// list rotated by one more place each round, so that no server always runs
// first on a fresh machine or always right after the same neighbour (whose
// closed connections and freed memory the kernel may still be tidying).
func roundOrder(n, round int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = (i + round - 1) % n
	}
	return order
}

// writeOutputs prints the tables and writes the files cfg asks for.
func writeOutputs(cfg Config, res *Results, out io.Writer) error {
	errs := []error{WriteTerminal(out, res)}
	if cfg.JSON != "" {
		errs = append(errs, writeJSON(cfg.JSON, res))
	}
	if cfg.MD != "" {
		errs = append(errs, writeFile(cfg.MD, func(w io.Writer) error { return WriteMarkdown(w, res) }))
	}
	return errors.Join(errs...)
}

// writeJSON writes v, indented, to path.
func writeJSON(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// rawDir picks and creates the directory for per-run files.
func rawDir(cfg Config) (string, error) {
	dir := cfg.RawDir
	if dir == "" {
		for _, f := range []string{cfg.JSON, cfg.MD} {
			if f != "" {
				dir = strings.TrimSuffix(f, filepath.Ext(f)) + ".raw"
				break
			}
		}
	}
	if dir == "" {
		return os.MkdirTemp("", "bench-suite-")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

func writeFile(path string, fn func(io.Writer) error) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = fn(f)
	return errors.Join(err, f.Close())
}

// runServer starts s, runs its scenarios, stops it; then the scenarios
// that need a server of their own.
func (c *Config) runServer(ctx context.Context, res *Results, round int, s ServerSpec, out io.Writer) {
	if !slices.ContainsFunc(res.Scenarios, func(sc Scenario) bool { return runs(s, sc.ID) && len(sc.ServerArgs) == 0 }) {
		c.runDedicated(ctx, res, round, s, out)
		return
	}
	base := filepath.Join(res.RawDir, fmt.Sprintf("r%d-%s", round, s.Name))
	sr := ServerRun{Round: round, Server: s.Name, Log: base + ".server.log"}
	srv, err := c.launch(ctx, s, sr.Log)
	if err != nil {
		sr.Error = err.Error()
		res.ServerRuns = append(res.ServerRuns, sr)
		fmt.Fprintf(out, "[round %d/%d %s] %v\n", round, c.Rounds, s.Name, err)
		for _, sc := range res.Scenarios {
			if runs(s, sc.ID) {
				res.Runs = append(res.Runs, RunRecord{Round: round, Server: s.Name, Scenario: sc.ID, Exit: -1, Error: fmt.Sprintf("%v: %v", errNoServer, err)})
			}
		}
		return
	}
	ep := srv.Endpoint()
	sr.Endpoint = ep
	baseFDs := openFDs(ep.PID)
	limit := c.quiesceLimit
	if limit <= 0 {
		limit = 30 * time.Second
	}
	first := true
	for _, sc := range res.Scenarios {
		if !runs(s, sc.ID) || len(sc.ServerArgs) > 0 || ctx.Err() != nil {
			continue
		}
		if !first && baseFDs >= 0 {
			// Let the previous scenario's connections go, then give the
			// server time to reach its steady state (idle pool workers
			// retired) so that "before" snapshots are comparable.
			quiesce(ctx, ep.PID, baseFDs, limit)
			sleepCtx(ctx, c.pause)
		}
		first = false
		if baseFDs >= 0 && openFDs(ep.PID) < 0 {
			res.Runs = append(res.Runs, RunRecord{Round: round, Server: s.Name, Scenario: sc.ID, Exit: -1, Error: "the server is gone (see " + sr.Log + ")"})
			continue
		}
		rec := c.runOne(ctx, round, s, sc, ep, base+"-"+sc.ID, s.Kind == KindWspushd && sc.ID == c.CPUProfile)
		res.Runs = append(res.Runs, rec)
		fmt.Fprintf(out, "[round %d/%d %s] %s\n", round, c.Rounds, s.Name, progressLine(rec))
	}
	sr.Stopped, err = srv.Stop()
	if err != nil {
		sr.Error = err.Error()
		fmt.Fprintf(out, "[round %d/%d %s] stop: %v\n", round, c.Rounds, s.Name, err)
	}
	res.ServerRuns = append(res.ServerRuns, sr)
	c.runDedicated(ctx, res, round, s, out)
}

// runOne runs one scenario against ep.
func (c *Config) runOne(ctx context.Context, round int, s ServerSpec, sc Scenario, ep Endpoint, base string, profile bool) RunRecord {
	rec := RunRecord{Round: round, Server: s.Name, Scenario: sc.ID, JSON: base + ".json", Log: base + ".log", Exit: -1}
	args := append([]string{sc.Command}, sc.Args...)
	if s.Kind == KindWspushd {
		args = append(args, sc.WspushdArgs...)
	}
	args = append(args, s.ClientArgs...)
	pids := strconv.Itoa(ep.PID)
	if ep.PIDs != "" {
		pids = ep.PIDs
	}
	args = append(args, "--ws", ep.WS, "--api", ep.API, "--server-pid", pids, "--json", rec.JSON)
	rec.Command = append([]string{c.Exe}, args...)
	var profDone chan error
	if profile {
		rec.Profile = base + ".cpu.pprof"
		profDone = make(chan error, 1)
		go func() { profDone <- fetchProfile(ctx, ep.API, sc.Seconds+3, rec.Profile) }()
	}
	start := time.Now()
	st, err := c.runStep(ctx, c.Exe, args, rec.JSON, rec.Log, sc.Timeout)
	rep, code := st.Report, st.Exit
	rec.Seconds, rec.Exit, rec.ClientCPU = time.Since(start).Seconds(), code, st.CPU
	if profDone != nil {
		if perr := <-profDone; perr != nil {
			rec.Notes = append(rec.Notes, "cpu profile: "+perr.Error())
			rec.Profile = ""
		}
	}
	switch {
	case err != nil:
		rec.Error = err.Error()
	case code != 0 && code != 3:
		rec.Error = fmt.Sprintf("bench exited %d: %s", code, lastLine(rec.Log))
	}
	if rep == nil {
		return rec
	}
	rec.Metrics = Extract(sc.ID, rep)
	rec.addClientCPU(rep)
	for k, v := range rec.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(rec.Metrics, k)
		}
	}
	if ch := rep.Checks; ch != nil {
		pass := ch.Pass
		rec.Pass, rec.Verdict = &pass, ch.Verdict
	}
	rec.Notes = append(rec.Notes, rep.Notes...)
	return rec
}

// progressLine is one finished run for the terminal.
func progressLine(r RunRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.1f s", r.Scenario, r.Seconds)
	if r.Pass != nil {
		if *r.Pass {
			b.WriteString(", checks PASS")
		} else {
			b.WriteString(", checks FAIL: " + r.Verdict)
		}
	}
	if r.Error != "" {
		b.WriteString(", ERROR: " + r.Error)
	}
	for _, d := range Metrics {
		if d.Scenario == r.Scenario && d.Headline {
			if v, ok := r.Metrics[d.Key]; ok {
				fmt.Fprintf(&b, "; %s %s", d.Label, Format(d, v))
			}
		}
	}
	return b.String()
}
