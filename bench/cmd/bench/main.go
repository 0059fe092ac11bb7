// Command bench is wspush's load tool: it holds many WebSocket clients on a
// few epoll instances, publishes through the HTTP API, and checks and times
// every delivery.
//
//	bench connect    ramp to N connections; connects/s, handshake latency, server cost per connection
//	bench broadcast  N subscribers, M publishes; latency, time to last subscriber, exactly-once in order
//	bench throughput publish at a rate for a duration; deliveries/s, latency under load, server CPU
//	bench churn      connect/close cycles at a rate; failures, server fds/goroutines/RSS before and after
//	bench slow       K clients that never read among N readers; readers' latency and loss, server RSS
//	bench recover    N clients miss M messages, then resume at once with since; catch-up time, exactly-once, server CPU
//	bench cluster    broadcast and throughput against N wspushd nodes on one Redis and against one node; ratios
//	bench scale      N clients on K wspushd nodes sharing one port (--reuseport) and one Redis; memory per connection, exactly-once broadcasts
//	bench scale-report  several `bench scale --json` results side by side against N: HTML charts and a Markdown table
//	bench suite      start each --server in turn, run the standard scenarios against it, rounds; medians, ratios, targets
//
// Run `bench SCENARIO -h` for a scenario's flags. --procs N spreads the
// clients over N child processes (this binary, re-executed), each binding
// its own source address 127.0.0.(2+i).
//
// Exit status: 0 when the run finished and its checks passed, 1 on an error,
// 2 on bad usage, 3 when the run finished but a check failed (or not one
// connection came up). scale-report runs nothing: 0 when it wrote the
// report, whatever the runs' verdicts, 1 when it could not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/scale"
	"github.com/wspush/wspush/bench/internal/scenario"
	"github.com/wspush/wspush/bench/internal/suite"
)

const usage = `usage: bench SCENARIO [flags]

scenarios:
  connect     ramp to -n connections; connects/s, handshake latency, failures, server cost per connection
  broadcast   -n subscribers, -m publishes of -s bytes; latency, last-subscriber time, exactly-once checks
  throughput  publish at --rate (or flat out) for --duration; deliveries/s, latency, server CPU per million
  churn       connect/close cycles at --rate for --duration; failures, server before/after
  slow        -k clients that never read among -n readers; readers' latency and loss, server RSS over time
  recover     -n clients read live, disconnect, miss -m messages, resume at once with since; time until
              every client caught up (p50/p99, last), exactly-once checks, server CPU
              (the server needs --history-size >= -m)
  cluster     start a redis-server and --nodes wspushd nodes, run broadcast and throughput against them
              and against one node with the same load, --rounds times; medians and cluster/one-node ratios
  scale       start a redis-server and ceil(-n/19000)+1 wspushd nodes sharing one port (--reuseport),
              connect -n clients from many 127.0.0.0/8 source addresses, hold them idle, measure user
              and kernel memory per connection, publish --broadcasts checked exactly once and in order
              (raises the kernel settings it needs as root, and restores them)
  scale-report  --html FILE [--out-md FILE] RESULT.json...: several "bench scale --json" results
              side by side against N, one point and one table row per file: charts of memory per
              connection, broadcast to the last subscriber and keepalive CPU per ping (HTML), and
              a Markdown table (stdout, or --out-md)
  suite       start each --server in turn and run the standard scenarios against it, --rounds times;
              medians, ratios against the peers, targets (--json, --out-md)

bench SCENARIO -h lists the scenario's flags.
`

func main() {
	if os.Getenv(fleet.ChildEnv) == "1" {
		os.Exit(fleet.ChildMain(os.Stdin, os.Stdout))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs one scenario, returning the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sub := args[0]
	fs := flag.NewFlagSet("bench "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var progress *report.Progress
	if f, ok := stdout.(*os.File); ok {
		progress = report.NewProgress(f)
	}
	var start runner
	switch sub {
	case "connect":
		start = bind[scenario.ConnectConfig](fs, scenario.Connect)
	case "broadcast":
		start = bind[scenario.BroadcastConfig](fs, scenario.Broadcast)
	case "throughput":
		start = bind[scenario.ThroughputConfig](fs, scenario.Throughput)
	case "churn":
		start = bind[scenario.ChurnConfig](fs, scenario.Churn)
	case "slow":
		start = bind[scenario.SlowConfig](fs, scenario.Slow)
	case "recover":
		start = bind[scenario.RecoverConfig](fs, scenario.Recover)
	case "suite":
		return runSuite(ctx, args, stdout, stderr)
	case "cluster":
		return runCluster(ctx, args, stdout, stderr)
	case "scale":
		return runScale(ctx, args, stdout, stderr)
	case "scale-report":
		return runScaleReport(args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "bench: unknown scenario %q\n\n%s", sub, usage)
		return 2
	}
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process to `file` (with --procs 1 it covers the clients)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench %s: unexpected arguments %q\n", sub, fs.Args())
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := start(ctx, stdout, progress)
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", sub, err)
		return 1
	}
	if rep != nil && rep.Checks != nil && !rep.Checks.Pass {
		return 3
	}
	if rep != nil && rep.Clients != nil && rep.Clients.Target > 0 && rep.Clients.Up == 0 {
		return 3 // not one connection came up: nothing was measured
	}
	return 0
}

// runner runs one scenario whose flags have been parsed.
type runner func(ctx context.Context, out io.Writer, progress *report.Progress) (*report.Report, error)

// scenarioConfig is what every scenario's config does: register its flags
// and take its output (through its Common).
type scenarioConfig[T any] interface {
	*T
	Register(fs *flag.FlagSet)
	SetOutput(out io.Writer, progress *report.Progress)
}

// bind registers a fresh T's flags on fs and returns the runner that hands
// it, once parsed, to run.
func bind[T any, P scenarioConfig[T]](fs *flag.FlagSet, run func(context.Context, T) (*report.Report, error)) runner {
	var cfg T
	P(&cfg).Register(fs)
	return func(ctx context.Context, out io.Writer, progress *report.Progress) (*report.Report, error) {
		P(&cfg).SetOutput(out, progress)
		return run(ctx, cfg)
	}
}

// runSuite parses the suite's flags and runs it: exit 0 when every run
// produced results (checks and targets are reported, not enforced), 1 when
// some did not or an output could not be written, 2 on bad usage.
func runSuite(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg suite.Config
	if code, ok := parseFlags("bench suite", args, stderr, cfg.Register); !ok {
		return code
	}
	cfg.Out = stdout
	cfg.Command = append([]string{os.Args[0]}, args...)
	res, err := suite.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bench suite: %v\n", err)
		return 1
	}
	if n := res.Errors(); n > 0 {
		fmt.Fprintf(stderr, "bench suite: %d runs produced no results (see the problems above)\n", n)
		return 1
	}
	return 0
}

// parseFlags parses a subcommand's flags (args[0] is the subcommand) with
// register; not ok means return code: 0 after -h, 2 on bad usage.
func parseFlags(name string, args []string, stderr io.Writer, register func(*flag.FlagSet)) (code int, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", name, fs.Args())
		return 2, false
	}
	return 0, true
}

// runCluster parses the cluster comparison's flags and runs it: exit 0
// when every run produced results, 1 when some did not (or an output could
// not be written), 2 on bad usage.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg suite.ClusterConfig
	if code, ok := parseFlags("bench cluster", args, stderr, cfg.Register); !ok {
		return code
	}
	cfg.Out = stdout
	cfg.Command = append([]string{os.Args[0]}, args...)
	res, err := suite.RunCluster(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bench cluster: %v\n", err)
		return 1
	}
	if n := res.Errors(); n > 0 {
		fmt.Fprintf(stderr, "bench cluster: %d runs or starts failed (see the problems above)\n", n)
		return 1
	}
	return 0
}

// runScale parses the scale run's flags and runs it: exit 0 when it
// passed, 3 when it finished with a failed check, 1 when it could not be
// carried out, 2 on bad usage.
func runScale(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg scale.Config
	if code, ok := parseFlags("bench scale", args, stderr, cfg.Register); !ok {
		return code
	}
	cfg.Out, cfg.Err = stdout, stderr
	res, err := scale.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bench scale: %v\n", err)
	}
	if err == nil && !res.Pass {
		for _, p := range res.Problems {
			fmt.Fprintf(stderr, "bench scale: %s\n", p)
		}
	}
	switch {
	case err != nil:
		return 1
	case !res.Pass:
		return 3
	}
	return 0
}

// runScaleReport parses the scale report's flags, takes its arguments as
// the results files and writes the report: exit 0 when it was written, 1
// when a file could not be read or an output written (or no file or no
// --html was given), 2 on bad usage.
func runScaleReport(args []string, stdout, stderr io.Writer) int {
	var cfg scale.ReportConfig
	fs := flag.NewFlagSet("bench scale-report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench scale-report --html FILE [--out-md FILE] RESULT.json...\n")
		fs.PrintDefaults()
	}
	cfg.Register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Files, cfg.Out = fs.Args(), stdout
	if err := scale.RunReport(cfg); err != nil {
		fmt.Fprintf(stderr, "bench scale-report: %v\n", err)
		return 1
	}
	return 0
}
