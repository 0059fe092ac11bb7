package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Redis is a redis-server started by the load tool (the cluster comparison, bench scale).
type Redis struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	log    *os.File
}

// ErrNoRedis says how to get redis-server.
var ErrNoRedis = errors.New("redis-server is not on PATH: install it with scripts/deps.sh (make deps)")

// FreePort returns a port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRedis runs bin (empty: redis-server from PATH) on a free loopback
// port without persistence, its output into logPath, and waits (at most
// 10 s) until it answers PING.
func StartRedis(ctx context.Context, bin, logPath string) (*Redis, error) {
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoRedis, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	r := &Redis{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{}), log: logf}
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-r.exited:
			r.Stop()
			return nil, fmt.Errorf("redis-server exited at start; see %s", logPath)
		default:
		}
		if redisPing(r.addr) == nil {
			return r, nil
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	r.Stop()
	return nil, fmt.Errorf("redis-server did not answer PING on %s within 10 s; see %s", r.addr, logPath)
}

// redisPing sends PING and expects +PONG.
func redisPing(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Second))
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// URL is the broker URL of r for wspushd --broker.
func (r *Redis) URL() string { return "redis://" + r.addr + "/0" }

// PID is r's process id.
func (r *Redis) PID() int { return r.cmd.Process.Pid }

// Stop ends r: SIGTERM, SIGKILL after 10 s; it waits for the exit.
func (r *Redis) Stop() {
	select {
	case <-r.exited:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(10 * time.Second)
		select {
		case <-r.exited:
		case <-t.C:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		t.Stop()
	}
	r.log.Close()
}
