package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wspush/wspush/bench/internal/serverstat"
)

// Server kinds: how a binary is started and how it tells its addresses.
const (
	// KindPeer follows the bench/peers contract: -listen and -api-listen,
	// then one stdout line "LISTEN ws=<addr> api=<addr>".
	KindPeer = "peer"
	// KindWspushd is wspushd: --listen, --api-listen, --log-level info,
	// --pprof (idle unless profiled; lets the churn scenario force a GC
	// before its snapshots), and a start-up log line on stderr holding
	// ws=<addr> api=<addr>.
	KindWspushd = "wspushd"
)

// ServerSpec is one --server: a name for the tables, a binary, extra
// arguments for it, and the scenarios it runs.
type ServerSpec struct {
	// Name labels the server in every table (and in file names).
	Name string `json:"name"`
	// Path is the binary.
	Path string `json:"path"`
	// Args are appended to the listen flags the suite passes.
	Args []string `json:"args,omitempty"`
	// Kind is KindPeer or KindWspushd (from the binary's base name).
	Kind string `json:"kind"`
	// Only lists the scenarios run against this server (empty: all).
	Only []string `json:"only,omitempty"`
	// ClientArgs are appended to every scenario's command against this
	// server (the suite's --client-args), e.g. --compression for a
	// server that compresses.
	ClientArgs []string `json:"client_args,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseServerSpec parses "name=path [arg ...]": the binary and any extra
// arguments are separated by spaces. A binary whose base name starts with
// "wspushd" is started as wspushd, anything else as a bench peer.
func ParseServerSpec(s string) (ServerSpec, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return ServerSpec{}, fmt.Errorf("--server %q: want name=path", s)
	}
	if !nameRE.MatchString(name) {
		return ServerSpec{}, fmt.Errorf("--server %q: the name must be 1-64 of [A-Za-z0-9_.-]", s)
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return ServerSpec{}, fmt.Errorf("--server %q: no binary", s)
	}
	return ServerSpec{Name: name, Path: f[0], Args: f[1:], Kind: KindOf(f[0])}, nil
}

// KindOf tells how the binary at path is driven.
func KindOf(path string) string {
	if strings.HasPrefix(filepath.Base(path), "wspushd") {
		return KindWspushd
	}
	return KindPeer
}

// startArgs are the arguments a server of spec's kind starts with, on free
// loopback ports.
func startArgs(spec ServerSpec) []string {
	var a []string
	if spec.Kind == KindWspushd {
		a = []string{"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--log-level", "info", "--pprof"}
	} else {
		a = []string{"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}
	}
	return append(a, spec.Args...)
}

// ParseListenLine parses a peer's "LISTEN ws=<addr> api=<addr>" line.
func ParseListenLine(line string) (ws, api string, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "LISTEN" {
		return "", "", false
	}
	ws, ok1 := strings.CutPrefix(f[1], "ws=")
	api, ok2 := strings.CutPrefix(f[2], "api=")
	if !ok1 || !ok2 || !hostPort(ws) || !hostPort(api) {
		return "", "", false
	}
	return ws, api, true
}

var (
	textWS   = regexp.MustCompile(`(?:^|\s)ws="?([^\s"]+)"?`)
	textAPI  = regexp.MustCompile(`(?:^|\s)api="?([^\s"]+)"?`)
	jsonWS   = regexp.MustCompile(`"ws":"([^"]+)"`)
	jsonAPI  = regexp.MustCompile(`"api":"([^"]+)"`)
	startMsg = regexp.MustCompile(`wspushd started`)
)

// ParseStartupLine finds ws=<addr> and api=<addr> in one of wspushd's log
// lines (slog text, quoted or not, or slog JSON). Only the "wspushd
// started" line qualifies.
func ParseStartupLine(line string) (ws, api string, ok bool) {
	if !startMsg.MatchString(line) {
		return "", "", false
	}
	for _, p := range [][2]*regexp.Regexp{{textWS, textAPI}, {jsonWS, jsonAPI}} {
		w, a := p[0].FindStringSubmatch(line), p[1].FindStringSubmatch(line)
		if w != nil && a != nil && hostPort(w[1]) && hostPort(a[1]) {
			return w[1], a[1], true
		}
	}
	return "", "", false
}

func hostPort(s string) bool {
	h, p, err := net.SplitHostPort(s)
	return err == nil && h != "" && p != "" && p != "0"
}

// Endpoint is where a started server listens, and its pid.
type Endpoint struct {
	// WS is the WebSocket address.
	WS string `json:"ws"`
	// API is the HTTP API address.
	API string `json:"api"`
	// PID is the server's process id.
	PID int `json:"pid"`
	// PIDs, when set, is the comma-separated pids of a cluster's nodes
	// (WS and API then list every node too); it replaces PID in --server-pid.
	PIDs string `json:"pids,omitempty"`
}

// Server is a started server.
type Server interface {
	// Endpoint is where it listens.
	Endpoint() Endpoint
	// Stop ends it (SIGTERM, then SIGKILL after a grace period) and says
	// how it exited.
	Stop() (string, error)
}

// Launcher starts spec, its output going to logPath, and returns once it
// announced its addresses.
type Launcher func(ctx context.Context, spec ServerSpec, logPath string) (Server, error)

// process is a server started as a child process.
type process struct {
	cmd      *exec.Cmd
	ep       Endpoint
	log      *os.File
	grace    time.Duration
	exited   chan struct{} // closed once cmd.Wait returned
	waitErr  error         // set before exited closes
	readDone chan struct{} // closed once the announcing stream hit EOF
	pipe     *os.File
	once     sync.Once
	stopMsg  string
	stopErr  error
}

// launchProcess returns a Launcher of child processes that waits up to
// announce for the address line and gives a stopping server grace before
// SIGKILL.
func launchProcess(announce, grace time.Duration) Launcher {
	return func(ctx context.Context, spec ServerSpec, logPath string) (Server, error) {
		return startProcess(ctx, spec, startArgs(spec), logPath, announce, grace)
	}
}

// StartWspushd starts the wspushd binary path with exactly args (no
// listen flags added), its log in logPath, and returns once its start-up
// line named its addresses (within 15 s); Stop gives it 15 s after SIGTERM.
func StartWspushd(ctx context.Context, name, path string, args []string, logPath string) (Server, error) {
	return startProcess(ctx, ServerSpec{Name: name, Path: path, Kind: KindWspushd, Args: args}, args, logPath, 15*time.Second, 15*time.Second)
}

func startProcess(ctx context.Context, spec ServerSpec, args []string, logPath string, announce, grace time.Duration) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(spec.Path, args...)
	// The server dies with the suite's thread if the suite dies hard.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	parse := ParseListenLine
	if spec.Kind == KindWspushd {
		cmd.Stdout, cmd.Stderr = logf, pw
		parse = ParseStartupLine
	} else {
		cmd.Stdout, cmd.Stderr = pw, logf
	}
	fmt.Fprintf(logf, "# %s %s\n", spec.Path, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logf.Close()
		return nil, err
	}
	pw.Close()
	p := &process{cmd: cmd, log: logf, grace: grace, exited: make(chan struct{}), readDone: make(chan struct{}), pipe: pr}
	p.ep.PID = cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	found := make(chan Endpoint, 1)
	go p.scan(pr, parse, found)
	t := time.NewTimer(announce)
	defer t.Stop()
	select {
	case ep := <-found:
		p.ep.WS, p.ep.API = ep.WS, ep.API
		return p, nil
	case <-p.exited:
		p.Stop()
		return nil, fmt.Errorf("%s exited before announcing its addresses (%v); see %s", spec.Name, p.waitErr, logPath)
	case <-t.C:
		p.Stop()
		return nil, fmt.Errorf("%s did not announce its addresses within %v; see %s", spec.Name, announce, logPath)
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// scan copies the announcing stream to the log, line by line, and sends
// the first parsed endpoint on found.
func (p *process) scan(r io.Reader, parse func(string) (string, string, bool), found chan<- Endpoint) {
	defer close(p.readDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(p.log, line)
		if !sent {
			if ws, api, ok := parse(line); ok {
				found <- Endpoint{WS: ws, API: api}
				sent = true
			}
		}
	}
}

func (p *process) Endpoint() Endpoint { return p.ep }

// Stop sends SIGTERM, waits up to the grace period, then SIGKILLs. It is
// idempotent.
func (p *process) Stop() (string, error) {
	p.once.Do(func() {
		p.stopMsg, p.stopErr = p.stop()
		p.log.Close()
	})
	return p.stopMsg, p.stopErr
}

func (p *process) stop() (string, error) {
	select {
	case <-p.exited:
		p.finishRead()
		return "", fmt.Errorf("had already exited: %v", p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(p.grace)
	defer t.Stop()
	killed := false
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		killed = true
	}
	p.finishRead()
	switch {
	case killed:
		return "killed", fmt.Errorf("did not exit within %v of SIGTERM: killed", p.grace)
	case p.waitErr != nil:
		return p.waitErr.Error(), fmt.Errorf("exit after SIGTERM: %w", p.waitErr)
	}
	return "exit 0", nil
}

// finishRead waits briefly for the announcing stream to drain, then closes it.
func (p *process) finishRead() {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.readDone:
	case <-t.C:
	}
	p.pipe.Close()
	<-p.readDone
}

// openFDs counts pid's open descriptors (-1 when unreadable).
func openFDs(pid int) int64 {
	pr, err := serverstat.ReadProc(pid)
	if err != nil {
		return -1
	}
	return pr.FDs
}

// quiesce waits until the server holds no more than base+slack descriptors
// (the previous scenario's connections are gone), or its count stayed put
// for stable, or limit passed. It reports whether the count came down.
func quiesce(ctx context.Context, pid int, base int64, limit time.Duration) bool {
	const slack, stable = 8, 3 * time.Second
	deadline := time.Now().Add(limit)
	last, since := int64(-2), time.Now()
	for ctx.Err() == nil {
		n := openFDs(pid)
		if n < 0 {
			return false
		}
		if n <= base+slack {
			return true
		}
		now := time.Now()
		if n != last {
			last, since = n, now
		}
		if now.After(deadline) || now.Sub(since) > stable {
			return false
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return false
		}
	}
	return false
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errNoServer marks the runs skipped because the server did not start.
var errNoServer = errors.New("server did not start")
