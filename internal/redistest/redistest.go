// Package redistest starts real redis-server processes for tests: a single
// server (Start) or a cluster of masters (StartCluster), each on free
// loopback ports, without persistence, in the test's temporary directory,
// stopped by t.Cleanup. It is test tooling, imported only by _test files.
//
// redis-server and redis-cli come from Debian packages that scripts/deps.sh
// installs (make test runs it). When redis-server is not on PATH a test
// that calls Start skips, or fails when CI=true, with a message naming that
// script.
//
// Everything listens on 127.0.0.1 only. Every wait is bounded in time and
// in count.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/testutil"
)

const (
	// readyTimeout bounds the wait for a started server to answer PING.
	readyTimeout = 10 * time.Second
	// pollInterval is the pause between two readiness probes.
	pollInterval = 20 * time.Millisecond
	// termTimeout bounds the wait for a server to exit after SIGTERM,
	// killTimeout the wait after SIGKILL.
	termTimeout = 5 * time.Second
	killTimeout = 5 * time.Second
	// startAttempts is how many ports Start tries: a free port is found by
	// binding 127.0.0.1:0 and closing the listener, so another process may
	// take it before redis-server binds it. Then the server exits and
	// Start tries again on another port.
	startAttempts = 3
	// clusterTimeout bounds redis-cli --cluster create, and then the wait
	// for every node to report cluster_state:ok.
	clusterTimeout = 30 * time.Second
	// ioTimeout bounds one dial or one request/reply of a probe.
	ioTimeout = time.Second
	// tailLines is how many lines of a server's output a failure shows.
	tailLines = 30
)

const depsHint = "run scripts/deps.sh as root (or make test), or: apt-get install -y redis-server redis-tools"

// RequireCommands skips the test (fails it when CI=true: in CI a missing
// dependency is a failure) unless every command is on PATH, and returns
// their paths in order. For tests that start Redis their own way.
func RequireCommands(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, name := range names {
		paths[i] = testutil.RequireCommand(t, name, depsHint)
	}
	return paths
}

// Server is one redis-server process on 127.0.0.1. Its methods may be called
// from several goroutines.
type Server struct {
	bin   string
	dir   string   // the test's temp dir; each process runs in a fresh subdirectory
	extra []string // arguments after the common ones (cluster mode)
	// clustered adds --cluster-port busPort, a second free port.
	clustered bool

	mu      sync.Mutex
	port    int
	busPort int      // cluster bus port, clustered only
	proc    *process // the current process; nil before the first start
	runs    int      // processes started, names their subdirectories
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, set before done is closed
}

// Start starts redis-server on a free port of 127.0.0.1, with no
// persistence, in a directory under t.TempDir(), and waits (at most 10 s)
// until it answers PING. t.Cleanup stops it: SIGTERM, a bounded wait, then
// SIGKILL, and the test fails if the process is still there.
//
// When redis-server is not on PATH, Start skips the test, or fails it when
// the environment has CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := RequireCommands(t, "redis-server")[0]
	s := &Server{bin: bin, dir: t.TempDir()}
	t.Cleanup(func() { s.cleanup(t) })
	if err := s.startFresh(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return s
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns "redis://127.0.0.1:port/0".
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop kills the server now (SIGKILL), as when Redis goes down, and waits
// (bounded) until the process has exited. Calling it again, or on a server
// already stopped, does nothing. Restart starts it again.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	s.proc.waitFor(killTimeout)
}

// Restart stops the server if it runs, then starts a fresh, empty
// redis-server on the same port, and waits (at most 10 s) until it answers
// PING. It fails t if the port cannot be bound again or the server does not
// answer.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.exited() {
		t.Fatalf("redistest: restart %s: the previous process (pid %d) did not exit after SIGKILL within %v",
			s.addrLocked(), s.proc.cmd.Process.Pid, killTimeout)
	}
	if err := s.launchLocked(); err != nil {
		t.Fatalf("redistest: restart on the same port: %v", err)
	}
}

func (s *Server) addrLocked() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// startFresh starts the first process, on new free ports, trying up to
// startAttempts times when the server exits before it is ready (the port
// was taken between freePort and the server's bind).
func (s *Server) startFresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
		if s.clustered {
			if s.busPort, err = freePort(); err != nil {
				return err
			}
		}
		err = s.launchLocked()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		var exited *exitedEarlyError
		if !errors.As(err, &exited) {
			break // not a lost port race: do not retry
		}
	}
	return errors.Join(errs...)
}

// exitedEarlyError is a server that exited before it answered PING, most
// often because its port was taken.
type exitedEarlyError struct{ msg string }

func (e *exitedEarlyError) Error() string { return e.msg }

// launchLocked starts one process on s.port (and s.busPort) in a fresh
// subdirectory and waits until it is ready. On failure the process is gone.
func (s *Server) launchLocked() error {
	s.runs++
	dir := fmt.Sprintf("%s/run%d", s.dir, s.runs)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--dir", dir,
	}
	if s.clustered {
		args = append(args, "--cluster-port", strconv.Itoa(s.busPort))
	}
	args = append(args, s.extra...)
	out := &tailBuffer{}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p
	if err := s.waitReady(p); err != nil {
		if !p.exited() {
			_ = cmd.Process.Kill()
			p.waitFor(killTimeout)
		}
		return err
	}
	return nil
}

// waitReady waits until the server on s.port answers PING and reports its
// own pid (so a foreign server that won the port race is not taken for
// ours), or until it exits, or readyTimeout.
func (s *Server) waitReady(p *process) error {
	addr := s.addrLocked()
	deadline := time.Now().Add(readyTimeout)
	maxProbes := int(readyTimeout/pollInterval) + 1
	var last error
	for i := 0; i < maxProbes && time.Now().Before(deadline); i++ {
		if p.exited() {
			return &exitedEarlyError{fmt.Sprintf("redis-server on %s exited before it answered PING (%v)%s",
				addr, p.err, p.out.tailMsg())}
		}
		reply, err := command(addr, "PING")
		if err == nil && reply != "PONG" {
			err = fmt.Errorf("PING answered %q", reply)
		}
		if err == nil {
			info, err := command(addr, "INFO", "server")
			if err != nil {
				return fmt.Errorf("INFO server on %s: %w%s", addr, err, p.out.tailMsg())
			}
			want := "process_id:" + strconv.Itoa(p.cmd.Process.Pid)
			if !containsLine(info, want) {
				// Another server answers on our port: ours failed to bind
				// and is exiting, or is about to.
				return &exitedEarlyError{fmt.Sprintf("the server answering on %s is not ours (want %s)%s",
					addr, want, p.out.tailMsg())}
			}
			return nil
		}
		last = err
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("redis-server on %s did not answer PING within %v: %v%s",
		addr, readyTimeout, last, p.out.tailMsg())
}

// cleanup stops the current process: SIGTERM, wait termTimeout, SIGKILL,
// wait killTimeout; then the test fails if it is still there.
func (s *Server) cleanup(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.waitFor(termTimeout) {
		return
	}
	_ = p.cmd.Process.Kill()
	if !p.waitFor(killTimeout) {
		t.Errorf("redistest: redis-server %s (pid %d) still running after SIGTERM and SIGKILL%s",
			s.addrLocked(), p.cmd.Process.Pid, p.out.tailMsg())
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor waits at most d for the process to exit and reports whether it did.
func (p *process) waitFor(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

// Cluster is a Redis Cluster of masters only, each a Server.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts masters (at least 3, as redis-cli requires)
// redis-server processes in cluster mode (--cluster-enabled yes
// --cluster-config-file nodes.conf --cluster-node-timeout 2000), each in its
// own temp directory on free loopback ports (client and cluster bus), joins
// them with redis-cli --cluster create ... --cluster-replicas 0
// --cluster-yes, and waits (bounded) until every node reports
// cluster_state:ok. t.Cleanup stops them all.
//
// When redis-server or redis-cli is not on PATH, StartCluster skips the test,
// or fails it when CI=true.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: StartCluster(%d): redis-cli --cluster create needs at least 3 masters", masters)
	}
	paths := RequireCommands(t, "redis-server", "redis-cli")
	bin, cli := paths[0], paths[1]
	c := &Cluster{}
	for i := 0; i < masters; i++ {
		s := &Server{
			bin:       bin,
			dir:       t.TempDir(),
			clustered: true,
			extra: []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
			},
		}
		t.Cleanup(func() { s.cleanup(t) })
		if err := s.startFresh(); err != nil {
			t.Fatalf("redistest: cluster node %d: %v", i, err)
		}
		c.nodes = append(c.nodes, s)
	}
	addrs := c.Addrs()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := runBounded(clusterTimeout, cli, args...); err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s%s", strings.Join(args, " "), err, out, c.tails())
	}
	deadline := time.Now().Add(clusterTimeout)
	maxProbes := int(clusterTimeout/(50*time.Millisecond)) + 1
	var last error
	for i := 0; i < maxProbes && time.Now().Before(deadline); i++ {
		if last = c.allOK(); last == nil {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redistest: cluster %v not ok within %v: %v%s", addrs, clusterTimeout, last, c.tails())
	return nil
}

// Addrs returns the nodes' "127.0.0.1:port" addresses, in the order they
// were started.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// allOK reports nil when every node's CLUSTER INFO has cluster_state:ok.
func (c *Cluster) allOK() error {
	for _, s := range c.nodes {
		info, err := command(s.Addr(), "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", s.Addr(), err)
		}
		if !containsLine(info, "cluster_state:ok") {
			return fmt.Errorf("%s: not cluster_state:ok:\n%s", s.Addr(), info)
		}
	}
	return nil
}

func (c *Cluster) tails() string {
	var b strings.Builder
	for _, s := range c.nodes {
		s.mu.Lock()
		if s.proc != nil {
			fmt.Fprintf(&b, "\n-- node %s:%s", s.addrLocked(), s.proc.out.tailMsg())
		}
		s.mu.Unlock()
	}
	return b.String()
}

// runBounded runs a command and kills it after d; it returns its combined
// output.
func runBounded(d time.Duration, name string, args ...string) (string, error) {
	out := &tailBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return out.String(), err
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done // Kill ends the process and so Wait; this wait is not open-ended
		return out.String(), fmt.Errorf("killed after %v", d)
	}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago: it binds
// 127.0.0.1:0 and closes the listener. Another process may take the port
// before the server binds it; startFresh then retries on another port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// command sends one command to addr and returns a simple-string, integer
// or bulk-string reply; an error reply is returned as an error. It is the
// least RESP the readiness probes need: no arrays.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 || n > 1<<20 {
			return "", fmt.Errorf("bad bulk reply header %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := readFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}

func readFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// containsLine reports whether text (lines ending in \r\n or \n) has the
// line want.
func containsLine(text, want string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimRight(line, "\r") == want {
			return true
		}
	}
	return false
}

// tailBuffer keeps the last maxTail bytes written to it: a server's stdout
// and stderr, for failure messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const maxTail = 64 << 10

func (tb *tailBuffer) Write(p []byte) (int, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.b = append(tb.b, p...)
	if len(tb.b) > maxTail {
		tb.b = append(tb.b[:0], tb.b[len(tb.b)-maxTail:]...)
	}
	return len(p), nil
}

func (tb *tailBuffer) String() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return string(tb.b)
}

// tailMsg returns the last tailLines lines, formatted to end a message.
func (tb *tailBuffer) tailMsg() string {
	lines := strings.Split(strings.TrimRight(tb.String(), "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	text := strings.Join(lines, "\n")
	if text == "" {
		return "\n(no output)"
	}
	return "\noutput (tail):\n" + text
}
