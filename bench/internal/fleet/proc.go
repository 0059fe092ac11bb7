package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ChildEnv is set to "1" in the environment of a child process: the binary
// then runs ChildMain instead of its usual main.
const ChildEnv = "WSPUSH_BENCH_CHILD"

// Line prefixes of the parent/child protocol. Parent to child: SPEC once,
// then FINISH once. Child to parent: STAT any number of times, READY once,
// then RESULT or ERROR once.
const (
	lineSpec   = "SPEC "
	lineFinish = "FINISH "
	lineStat   = "STAT "
	lineReady  = "READY "
	lineResult = "RESULT "
	lineError  = "ERROR "
)

// maxLine bounds one protocol line (a RESULT carries histograms and the
// per-message table).
const maxLine = 512 << 20

// Fleet is a running set of client processes (or one in-process runner).
type Fleet interface {
	// WaitReady blocks until every process passed the barrier and returns
	// the summed READY.
	WaitReady(ctx context.Context) (Ready, error)
	// Stat returns the latest live counters, summed.
	Stat() Stat
	// Finish sends FINISH to every process and merges their results.
	Finish(ctx context.Context, f Finish) (*Merged, error)
	// Close stops whatever still runs and waits for it. Idempotent.
	Close()
}

// Start runs specs: in-process when there is one spec and inProcess is
// set, otherwise as child processes of exe (os.Executable() if empty).
func Start(ctx context.Context, specs []Spec, inProcess bool, exe string) (Fleet, error) {
	if len(specs) == 1 && inProcess {
		return startLocal(ctx, specs[0]), nil
	}
	return startProcs(specs, exe)
}

// local runs one Spec on a goroutine of this process.
type local struct {
	cancel context.CancelFunc
	done   chan struct{}
	res    *Result // set before done closes
	err    error   // set before done closes
	ready  chan Ready
	fin    chan Finish
	mu     sync.Mutex
	stat   Stat // guarded by mu
	once   sync.Once
}

func startLocal(ctx context.Context, spec Spec) *local {
	ctx, cancel := context.WithCancel(ctx)
	l := &local{cancel: cancel, done: make(chan struct{}), ready: make(chan Ready, 1), fin: make(chan Finish, 1)}
	go func() {
		defer close(l.done)
		l.res, l.err = Run(ctx, spec, localCtl{l})
	}()
	return l
}

// Ready implements Control.
func (l *local) Ready(r Ready) { l.ready <- r }

func (l *local) setStat(s Stat) {
	l.mu.Lock()
	l.stat = s
	l.mu.Unlock()
}

func (l *local) Stat() Stat {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stat
}

// WaitFinish implements Control.
func (l *local) WaitFinish(ctx context.Context) (Finish, error) {
	select {
	case f := <-l.fin:
		return f, nil
	case <-ctx.Done():
		return Finish{}, ctx.Err()
	}
}

func (l *local) WaitReady(ctx context.Context) (Ready, error) {
	select {
	case r := <-l.ready:
		return r, nil
	case <-l.done:
		if l.err == nil {
			l.err = errors.New("fleet: runner ended before READY")
		}
		return Ready{}, l.err
	case <-ctx.Done():
		return Ready{}, ctx.Err()
	}
}

func (l *local) Finish(ctx context.Context, f Finish) (*Merged, error) {
	l.fin <- f
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		return nil, l.err
	}
	return Merge([]*Result{l.res})
}

func (l *local) Close() {
	l.once.Do(func() {
		l.cancel()
		<-l.done
	})
}

// localCtl adapts local to Control.Stat and Fleet.Stat, which share a
// name but not a signature.
type localCtl struct{ *local }

// Stat implements Control.
func (c localCtl) Stat(s Stat) { c.setStat(s) }

// child is one child process seen from the parent.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan Ready
	result chan *Result
	done   chan struct{} // closed when its stdout ended
	err    error         // set before done closes
	mu     sync.Mutex
	stat   Stat // guarded by mu
}

// procs is a Fleet of child processes.
type procs struct {
	kids []*child
	once sync.Once
}

func startProcs(specs []Spec, exe string) (*procs, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	p := &procs{}
	for _, s := range specs {
		k, err := startChild(exe, s)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.kids = append(p.kids, k)
	}
	return p, nil
}

func startChild(exe string, spec Spec) (*child, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	k := &child{cmd: cmd, stdin: stdin, ready: make(chan Ready, 1), result: make(chan *Result, 1), done: make(chan struct{})}
	b, _ := json.Marshal(spec)
	go k.read(stdout)
	if _, err := fmt.Fprintf(stdin, "%s%s\n", lineSpec, b); err != nil {
		k.kill()
		return nil, err
	}
	return k, nil
}

// read parses the child's stdout until it ends.
func (k *child) read(r io.Reader) {
	defer close(k.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	gotResult := false
	for sc.Scan() {
		line := sc.Text()
		var err error
		switch {
		case strings.HasPrefix(line, lineStat):
			var s Stat
			if err = json.Unmarshal([]byte(line[len(lineStat):]), &s); err == nil {
				k.mu.Lock()
				k.stat = s
				k.mu.Unlock()
			}
		case strings.HasPrefix(line, lineReady):
			var r Ready
			if err = json.Unmarshal([]byte(line[len(lineReady):]), &r); err == nil {
				k.ready <- r
			}
		case strings.HasPrefix(line, lineResult):
			var r Result
			if err = json.Unmarshal([]byte(line[len(lineResult):]), &r); err == nil {
				gotResult = true
				k.result <- &r
			}
		case strings.HasPrefix(line, lineError):
			k.err = errors.New("fleet: child: " + line[len(lineError):])
		default:
			fmt.Fprintf(os.Stderr, "fleet: child %d: %s\n", k.cmd.Process.Pid, line)
		}
		if err != nil {
			k.err = fmt.Errorf("fleet: bad line from child: %w", err)
		}
	}
	if k.err == nil && !gotResult {
		k.err = sc.Err()
		if k.err == nil {
			k.err = errors.New("fleet: child exited without a result")
		}
	}
	io.Copy(io.Discard, r)
}

func (k *child) kill() {
	k.stdin.Close()
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		k.cmd.Process.Kill()
		<-k.done
	}
	k.cmd.Wait()
}

func (p *procs) WaitReady(ctx context.Context) (Ready, error) {
	var sum Ready
	for _, k := range p.kids {
		select {
		case r := <-k.ready:
			sum.Up += r.Up
			sum.Failed += r.Failed
		case <-k.done:
			return sum, k.err
		case <-ctx.Done():
			return sum, ctx.Err()
		}
	}
	return sum, nil
}

func (p *procs) Stat() Stat {
	var s Stat
	for _, k := range p.kids {
		k.mu.Lock()
		s.Add(k.stat)
		k.mu.Unlock()
	}
	return s
}

func (p *procs) Finish(ctx context.Context, f Finish) (*Merged, error) {
	b, _ := json.Marshal(f)
	for _, k := range p.kids {
		if _, err := fmt.Fprintf(k.stdin, "%s%s\n", lineFinish, b); err != nil {
			return nil, err
		}
	}
	var rs []*Result
	for _, k := range p.kids {
		select {
		case r := <-k.result:
			rs = append(rs, r)
		case <-k.done:
			select {
			case r := <-k.result:
				rs = append(rs, r)
			default:
				return nil, k.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return Merge(rs)
}

func (p *procs) Close() {
	p.once.Do(func() {
		var wg sync.WaitGroup
		for _, k := range p.kids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k.kill()
			}()
		}
		wg.Wait()
	})
}

// pipeCtl is a child's Control over its stdin and stdout.
type pipeCtl struct {
	mu    sync.Mutex
	w     io.Writer
	lines <-chan string
}

func (c *pipeCtl) send(prefix string, v any) {
	b, err := json.Marshal(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		fmt.Fprintf(c.w, "%s%v\n", lineError, err)
		return
	}
	fmt.Fprintf(c.w, "%s%s\n", prefix, b)
}

func (c *pipeCtl) Ready(r Ready) { c.send(lineReady, r) }
func (c *pipeCtl) Stat(s Stat)   { c.send(lineStat, s) }

func (c *pipeCtl) WaitFinish(ctx context.Context) (Finish, error) {
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return Finish{}, errors.New("fleet: parent closed stdin before FINISH")
			}
			if !strings.HasPrefix(line, lineFinish) {
				continue
			}
			var f Finish
			err := json.Unmarshal([]byte(line[len(lineFinish):]), &f)
			return f, err
		case <-ctx.Done():
			return Finish{}, ctx.Err()
		}
	}
}

// ChildMain runs a child process: SPEC from stdin, the run, RESULT on
// stdout. It returns the exit code. Closing stdin before FINISH aborts.
func ChildMain(stdin io.Reader, stdout io.Writer) int {
	out := bufio.NewWriter(stdout)
	w := &flushWriter{w: out}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), lineSpec) {
		fmt.Fprintf(w, "%sno SPEC line on stdin\n", lineError)
		return 2
	}
	var spec Spec
	if err := json.Unmarshal([]byte(sc.Text()[len(lineSpec):]), &spec); err != nil {
		fmt.Fprintf(w, "%sbad SPEC: %v\n", lineError, err)
		return 2
	}
	life := spec.MaxLife
	if life <= 0 {
		life = time.Hour
	}
	ctx, cancel := context.WithTimeout(context.Background(), life)
	defer cancel()
	lines := make(chan string, 4)
	var finished atomic.Bool
	go func() {
		defer close(lines)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), lineFinish) {
				finished.Store(true)
			}
			lines <- sc.Text()
		}
		if !finished.Load() {
			cancel() // the parent went away
		}
	}()
	ctl := &pipeCtl{w: w, lines: lines}
	res, err := Run(ctx, spec, ctl)
	if err != nil {
		ctl.mu.Lock()
		fmt.Fprintf(w, "%s%v\n", lineError, err)
		ctl.mu.Unlock()
		return 1
	}
	ctl.send(lineResult, res)
	return 0
}

// flushWriter flushes after every write so that each protocol line leaves
// at once.
type flushWriter struct{ w *bufio.Writer }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}
