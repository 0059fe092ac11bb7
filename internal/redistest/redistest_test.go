package redistest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// do sends one command as a RESP array of bulk strings and returns the
// reply's first line ("+PONG", "$3", "-ERR ...") and, for a bulk string,
// its body. Enough RESP for these tests; no client library.
func do(t *testing.T, addr string, args ...string) (head, body string) {
	t.Helper()
	head, body, err := tryDo(addr, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
	return head, body
}

func tryDo(addr string, args ...string) (head, body string, err error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", "", err
	}
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return "", "", err
	}
	r := bufio.NewReader(conn)
	head, err = r.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	head = strings.TrimSuffix(head, "\r\n")
	if strings.HasPrefix(head, "$") && head != "$-1" {
		n, err := strconv.Atoi(head[1:])
		if err != nil {
			return "", "", fmt.Errorf("bad bulk header %q", head)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", "", err
		}
		body = string(b[:n])
	}
	return head, body, nil
}

// ping is the exchange from the brief, byte for byte.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func TestStartPingSetGet(t *testing.T) {
	s := redistest.Start(t)
	addr := s.Addr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", addr)
	}
	if want := "redis://" + addr + "/0"; s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
	if err := ping(addr); err != nil {
		t.Fatal(err)
	}
	if head, _ := do(t, addr, "SET", "k", "v1"); head != "+OK" {
		t.Fatalf("SET: %q", head)
	}
	if head, body := do(t, addr, "GET", "k"); head != "$2" || body != "v1" {
		t.Fatalf("GET: %q %q", head, body)
	}
}

func TestStopRestart(t *testing.T) {
	s := redistest.Start(t)
	addr := s.Addr()
	do(t, addr, "SET", "k", "v1")

	s.Stop()
	s.Stop() // idempotent
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("dial %s after Stop succeeded", addr)
	}

	s.Restart(t)
	if s.Addr() != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr())
	}
	if err := ping(addr); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if head, _ := do(t, addr, "GET", "k"); head != "$-1" {
		t.Fatalf("GET k after Restart: %q, want $-1 (empty server)", head)
	}
	if head, _ := do(t, addr, "DBSIZE"); head != ":0" {
		t.Fatalf("DBSIZE after Restart: %q, want :0", head)
	}

	// Restart of a running server replaces the process.
	do(t, addr, "SET", "k", "v2")
	s.Restart(t)
	if head, _ := do(t, addr, "DBSIZE"); head != ":0" {
		t.Fatalf("DBSIZE after the second Restart: %q, want :0", head)
	}
}

func TestStartTwice(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on %s", a.Addr())
	}
	do(t, a.Addr(), "SET", "k", "a")
	if head, _ := do(t, b.Addr(), "GET", "k"); head != "$-1" {
		t.Fatalf("servers share data: GET on b: %q", head)
	}
}

func TestCleanupStopsServer(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		addr = redistest.Start(t).Addr()
	})
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts after the subtest's cleanup", addr)
	}
}

func TestStartCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	addrs := c.Addrs()
	if len(addrs) != 3 {
		t.Fatalf("Addrs() = %v, want 3", addrs)
	}
	for _, addr := range addrs {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("node address %q is not loopback", addr)
		}
		_, info := do(t, addr, "CLUSTER", "INFO")
		if !strings.Contains(info, "cluster_state:ok") {
			t.Fatalf("%s CLUSTER INFO:\n%s", addr, info)
		}
		if !strings.Contains(info, "cluster_known_nodes:3") || !strings.Contains(info, "cluster_slots_assigned:16384") {
			t.Fatalf("%s CLUSTER INFO:\n%s", addr, info)
		}
	}
	// A key lives on one node; the others redirect with -MOVED.
	var owners, moved int
	for _, addr := range addrs {
		head, _ := do(t, addr, "SET", "k", "v")
		switch {
		case head == "+OK":
			owners++
		case strings.HasPrefix(head, "-MOVED "):
			moved++
		default:
			t.Fatalf("%s SET: %q", addr, head)
		}
	}
	if owners != 1 || moved != 2 {
		t.Fatalf("SET k: %d nodes took it, %d redirected; want 1 and 2", owners, moved)
	}
}
