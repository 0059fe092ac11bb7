package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/testutil"
)

// httpc keeps no connections open, so that a node's connection gauge counts
// only the browser's WebSockets.
var httpc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// node is a running wspushd child process.
type node struct {
	cmd     *exec.Cmd
	ws, api string // host:port of the WebSocket listener and of the API
	log     *testutil.SyncBuffer
	exited  chan struct{}
}

// startupLine is the start line's addresses, as in clients/js/wspush.test.js.
var startupLine = regexp.MustCompile(`\bws=(\S+) api=(\S+)`)

// startNode runs wspushd on loopback with args (which may set --listen; the
// default is a port the kernel picks) and waits for its start line. It is
// killed at cleanup; its log is shown when the test failed.
func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"}, args...)
	n := &node{cmd: exec.Command(binary, args...), log: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.kill(t)
		if t.Failed() {
			t.Logf("wspushd %v log:\n%s", args, n.log.String())
		}
	})
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		select {
		case <-n.exited:
			return errors.New("wspushd exited before its start line")
		default:
		}
		m := startupLine.FindStringSubmatch(n.log.String())
		if m == nil {
			return errors.New("no start line yet")
		}
		n.ws, n.api = m[1], m[2]
		return nil
	})
	return n
}

// kill sends SIGKILL (when the process still runs) and waits for the exit.
func (n *node) kill(t *testing.T) {
	t.Helper()
	_ = n.cmd.Process.Kill()
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("wspushd pid %d did not exit within 10s of SIGKILL", n.cmd.Process.Pid)
	}
}

// post sends body as JSON to the node's API and decodes the 200 answer
// into out (when not nil).
func (n *node) post(t *testing.T, path string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpc.Post("http://"+n.api+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %d %s", path, b, resp.StatusCode, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("POST %s: answer %s: %v", path, answer, err)
		}
	}
}

// published is the API's answer to a publish.
type published struct {
	Seq        uint64 `json:"seq"`
	Epoch      string `json:"epoch"`
	Recipients int    `json:"recipients"`
}

// publish publishes data (any JSON value) to a topic through the API.
func (n *node) publish(t *testing.T, topic string, data any) published {
	t.Helper()
	var p published
	n.post(t, "/api/publish", map[string]any{"topic": topic, "data": data}, &p)
	return p
}

// metric reads one unlabelled sample from the node's /metrics.
func (n *node) metric(name string) (float64, error) {
	resp, err := httpc.Get("http://" + n.api + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// connections is the node's wspush_connections gauge: upgraded WebSockets.
func (n *node) connections(t *testing.T) int {
	t.Helper()
	v, err := n.metric("wspush_connections")
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}
