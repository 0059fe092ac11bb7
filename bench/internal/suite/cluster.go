package suite

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wspush/wspush/bench/internal/serverstat"
)

// Setups of the cluster comparison.
const (
	// SetupCluster is --nodes wspushd nodes on one Redis.
	SetupCluster = "cluster"
	// SetupOne is one wspushd with the embedded engine, same total load.
	SetupOne = "one-node"
)

// ClusterConfig drives `bench cluster`: the same broadcast and throughput
// load against N wspushd nodes on one Redis and against one node alone.
type ClusterConfig struct {
	// Wspushd is the wspushd binary.
	Wspushd string
	// Nodes is the number of cluster nodes.
	Nodes int
	// Rounds is the number of rounds (each runs both setups).
	Rounds int
	// Quick shrinks the load.
	Quick bool
	// HistorySize is every node's --history-size (the one node's too).
	HistorySize int
	// Redis is the redis-server binary (empty: from PATH).
	Redis string
	// MD, JSON and RawDir are the outputs, as in the suite.
	MD string
	// JSON is the JSON output file.
	JSON string
	// RawDir holds per-run reports and logs.
	RawDir string
	// Extra holds flags appended to a step's command, by step ID.
	Extra map[string][]string
	// Exe is the bench binary run for each step (empty: this one).
	Exe string
	// Out receives progress and the table (nil: os.Stdout).
	Out io.Writer
	// Command is the command line, for the record.
	Command []string

	runStep StepRunner    // nil: bench subprocesses
	pause   time.Duration // between steps (0: 5 s)
}

// Register adds the cluster comparison's flags to fs.
func (c *ClusterConfig) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Wspushd, "wspushd", "bin/wspushd", "wspushd `binary` to start as the nodes and as the one node")
	fs.IntVar(&c.Nodes, "nodes", 3, "wspushd nodes in the cluster (one redis-server joins them)")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds; each runs the cluster and the one node, alternating which goes first")
	fs.BoolVar(&c.Quick, "quick", false, "shrink the load (2,000 connections, 5 s) for a fast check")
	fs.IntVar(&c.HistorySize, "history-size", 100, "--history-size of every wspushd started")
	fs.StringVar(&c.Redis, "redis-server", "redis-server", "redis-server `binary` (scripts/deps.sh installs it)")
	fs.StringVar(&c.MD, "out-md", "", "write the results as Markdown to `file`")
	fs.StringVar(&c.JSON, "json", "", "write the results as JSON to `file`")
	fs.StringVar(&c.RawDir, "raw-dir", "", "`dir` for each run's report and logs (default: FILE.raw next to --json or --out-md)")
	fs.Func("extra", "append flags to one step, `id=flags` (repeatable; ids broadcast-large, throughput), e.g. throughput='--duration 5s'", func(s string) error {
		id, flags, ok := strings.Cut(s, "=")
		if !ok || (id != ScBcastLarge && id != ScThroughput) {
			return errors.New("want broadcast-large=flags or throughput=flags")
		}
		if c.Extra == nil {
			c.Extra = map[string][]string{}
		}
		c.Extra[id] = append(c.Extra[id], strings.Fields(flags)...)
		return nil
	})
}

// ClusterPlan is the comparison's steps: broadcast-large's fan-out (18,000
// subscribers spread over the nodes) and throughput.
func ClusterPlan(quick bool) []Scenario {
	bn, bm, brate, tn, tdur := 18000, 20, 2, 10000, 20*time.Second
	if quick {
		bn, bm, brate, tn, tdur = 2000, 10, 5, 1000, 5*time.Second
	}
	sc := []Scenario{
		{ID: ScBcastLarge, Command: "broadcast", Title: fmt.Sprintf("broadcast 128 B to %s", thousands(bn)),
			Args: append([]string{"-n", itoa(bn), "-m", itoa(bm), "-s", "128", "--rate", itoa(brate)}, procsFor(bn)...), Seconds: bm / brate},
		{ID: ScThroughput, Command: "throughput", Title: fmt.Sprintf("throughput to %s for %s", thousands(tn), tdur),
			Args:    append([]string{"-n", itoa(tn), "--duration", tdur.String(), "--publishers", "4", "-s", "128"}, procsFor(tn)...),
			Seconds: int(tdur / time.Second)},
	}
	for i := range sc {
		sc[i].Timeout = 10 * time.Minute
		sc[i].Args = append(sc[i].Args, "--timeout", "8m")
	}
	return sc
}

// ClusterResults is what a cluster comparison found.
type ClusterResults struct {
	RunInfo
	// Nodes, Rounds, Quick and HistorySize are the settings.
	Nodes int `json:"nodes"`
	// Rounds is the number of rounds.
	Rounds int `json:"rounds"`
	// Quick tells which sizes ran.
	Quick bool `json:"quick"`
	// HistorySize is every wspushd's --history-size.
	HistorySize int `json:"history_size"`
	// Scenarios are the steps.
	Scenarios []Scenario `json:"scenarios"`
	// Runs are every step run; Server is SetupCluster or SetupOne.
	Runs []RunRecord `json:"runs"`
	// ServerRuns are every server start (nodes, one node, Redis).
	ServerRuns []ServerRun `json:"server_runs"`
	// Table holds the medians per setup.
	Table Table `json:"medians"`
	// Rows are the comparison.
	Rows []ClusterRow `json:"rows"`
	// RawDir holds the per-run files.
	RawDir string `json:"raw_dir"`
}

// Errors counts runs and starts that failed.
func (r *ClusterResults) Errors() int {
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

// RunCluster runs the comparison and writes its outputs.
func RunCluster(ctx context.Context, cfg ClusterConfig) (*ClusterResults, error) {
	if cfg.Nodes < 1 || cfg.Nodes > 16 {
		return nil, errors.New("--nodes must be 1-16")
	}
	if cfg.Rounds < 1 || cfg.Rounds > 100 {
		return nil, errors.New("--rounds must be 1-100")
	}
	if _, err := os.Stat(cfg.Wspushd); err != nil {
		return nil, fmt.Errorf("--wspushd: %w", err)
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Exe = exe
	}
	if cfg.runStep == nil {
		cfg.runStep = runBench
	}
	if cfg.pause == 0 {
		cfg.pause = 5 * time.Second
	}
	raw, err := rawDir(Config{RawDir: cfg.RawDir, JSON: cfg.JSON, MD: cfg.MD})
	if err != nil {
		return nil, err
	}
	res := &ClusterResults{RunInfo: startRun(cfg.Command, ReadMachine()), Nodes: cfg.Nodes, Rounds: cfg.Rounds,
		Quick: cfg.Quick, HistorySize: cfg.HistorySize, RawDir: raw}
	for _, s := range ClusterPlan(cfg.Quick) {
		s.Args = append(s.Args, cfg.Extra[s.ID]...)
		res.Scenarios = append(res.Scenarios, s)
	}
	fmt.Fprintf(cfg.Out, "cluster: %d rounds × (%d nodes on Redis, one node); per-run files in %s\n", cfg.Rounds, cfg.Nodes, raw)
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		setups := []string{SetupCluster, SetupOne}
		if round%2 == 0 {
			setups[0], setups[1] = setups[1], setups[0]
		}
		for _, setup := range setups {
			if ctx.Err() == nil {
				cfg.runSetup(ctx, res, round, setup)
			}
		}
	}
	res.finish()
	res.summarize()
	return res, errors.Join(ctx.Err(), cfg.writeOutputs(res))
}

// started is one setup's servers: the nodes and, for the cluster, Redis.
type started struct {
	nodes []Server
	redis *Redis
	ep    Endpoint
}

func (s *started) stop(res *ClusterResults, runs []ServerRun) {
	for i, n := range s.nodes {
		runs[i].Stopped, _ = n.Stop()
	}
	if s.redis != nil {
		s.redis.Stop()
	}
	res.ServerRuns = append(res.ServerRuns, runs...)
}

// startSetup starts setup's servers; on failure whatever started is stopped.
func (c *ClusterConfig) startSetup(ctx context.Context, res *ClusterResults, base, setup string) (*started, []ServerRun, error) {
	st := &started{}
	var runs []ServerRun
	args := []string{"--history-size", strconv.Itoa(c.HistorySize)}
	n := 1
	if setup == SetupCluster {
		r, err := StartRedis(ctx, c.Redis, base+".redis.log")
		if err != nil {
			return nil, nil, err
		}
		st.redis, n = r, c.Nodes
	}
	var ws, api, pids []string
	launch := launchProcess(15*time.Second, 15*time.Second)
	for i := 0; i < n; i++ {
		spec := ServerSpec{Name: fmt.Sprintf("%s-node%d", setup, i+1), Path: c.Wspushd, Kind: KindWspushd, Args: args}
		if st.redis != nil {
			spec.Args = append([]string{"--broker", st.redis.URL(), "--node-name", fmt.Sprintf("node%d", i+1)}, args...)
		}
		sr := ServerRun{Server: spec.Name, Log: fmt.Sprintf("%s-node%d.server.log", base, i+1)}
		srv, err := launch(ctx, spec, sr.Log)
		if err != nil {
			st.stop(res, runs)
			return nil, nil, err
		}
		st.nodes, sr.Endpoint = append(st.nodes, srv), srv.Endpoint()
		runs = append(runs, sr)
		ws, api = append(ws, sr.Endpoint.WS), append(api, sr.Endpoint.API)
		pids = append(pids, strconv.Itoa(sr.Endpoint.PID))
	}
	st.ep = Endpoint{WS: strings.Join(ws, ","), API: strings.Join(api, ","), PID: st.nodes[0].Endpoint().PID, PIDs: strings.Join(pids, ",")}
	return st, runs, nil
}

// runSetup starts setup's servers, runs every step against them, stops them.
func (c *ClusterConfig) runSetup(ctx context.Context, res *ClusterResults, round int, setup string) {
	base := filepath.Join(res.RawDir, fmt.Sprintf("r%d-%s", round, setup))
	st, runs, err := c.startSetup(ctx, res, base, setup)
	if err != nil {
		res.ServerRuns = append(res.ServerRuns, ServerRun{Round: round, Server: setup, Error: err.Error()})
		fmt.Fprintf(c.Out, "[round %d/%d %s] %v\n", round, c.Rounds, setup, err)
		for _, sc := range res.Scenarios {
			res.Runs = append(res.Runs, RunRecord{Round: round, Server: setup, Scenario: sc.ID, Exit: -1, Error: fmt.Sprintf("%v: %v", errNoServer, err)})
		}
		return
	}
	for i := range runs {
		runs[i].Round = round
	}
	defer st.stop(res, runs)
	baseFDs := make([]int64, len(st.nodes))
	for i, n := range st.nodes {
		baseFDs[i] = openFDs(n.Endpoint().PID)
	}
	suite := &Config{Rounds: c.Rounds, Exe: c.Exe, runStep: c.runStep}
	for i, sc := range res.Scenarios {
		if ctx.Err() != nil {
			break
		}
		if i > 0 {
			for j, n := range st.nodes {
				quiesce(ctx, n.Endpoint().PID, baseFDs[j], 30*time.Second)
			}
			sleepCtx(ctx, c.pause)
		}
		var redisBefore float64
		if st.redis != nil {
			if p, err := serverstat.ReadProc(st.redis.PID()); err == nil {
				redisBefore = p.CPU
			}
		}
		rec := suite.runOne(ctx, round, ServerSpec{Name: setup, Kind: KindWspushd}, sc, st.ep, base+"-"+sc.ID, false)
		if st.redis != nil && rec.Metrics != nil {
			if p, err := serverstat.ReadProc(st.redis.PID()); err == nil {
				addRedisCPU(&rec, p.CPU-redisBefore)
			}
		}
		res.Runs = append(res.Runs, rec)
		fmt.Fprintf(c.Out, "[round %d/%d %s] %s\n", round, c.Rounds, setup, progressLine(rec))
	}
}

// addRedisCPU records Redis's CPU over a whole step run (connect phase
// included), and per million deliveries for throughput.
func addRedisCPU(rec *RunRecord, cpu float64) {
	rec.Metrics["redis_cpu_s"] = cpu
	if rec.Scenario != ScThroughput {
		return
	}
	if rep, err := ReadReport(rec.JSON); err == nil && rep.Throughput != nil && rep.Throughput.Deliveries > 0 {
		rec.Metrics["redis_cpu_s_per_million"] = cpu / (float64(rep.Throughput.Deliveries) / 1e6)
	}
}
