package faults

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
)

var binary string // built once by TestMain

// httpc never keeps connections open, so that the server's descriptor and
// goroutine counts are not disturbed by the test's own API calls.
var httpc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wspush-faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wspushd")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/wspushd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build wspushd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// goleak.VerifyTestMain would exit before the directory is removed:
	// what it does, by hand.
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(testutil.LeakOptions()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running wspushd child.
type server struct {
	cmd       *exec.Cmd
	ws, api   string
	stderr    *testutil.SyncBuffer
	exited    chan struct{}
	exitState *os.ProcessState
}

var addrLine = regexp.MustCompile(`ws=(\S+) api=(\S+)`)

// start runs wspushd on 127.0.0.1:0 with extra flags and waits for its
// start-up line. It is stopped (SIGKILL if still running) at cleanup.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--pprof"}, args...)
	s := &server{cmd: exec.Command(binary, args...), stderr: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		s.exitState = s.cmd.ProcessState
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		m := addrLine.FindStringSubmatch(s.stderr.String())
		if m == nil {
			return errors.New("no start-up line yet:\n" + s.stderr.String())
		}
		s.ws, s.api = m[1], m[2]
		return nil
	})
	return s
}

// rss returns the child's resident set size in bytes.
func (s *server) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// fds counts the child's open descriptors.
func (s *server) fds(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// metric reads one unlabelled sample from /metrics (after a GC when gc is
// set, through pprof, so heap numbers are live data).
func (s *server) metric(t *testing.T, name string, gc bool) float64 {
	t.Helper()
	if gc {
		resp, err := httpc.Get("http://" + s.api + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := httpc.Get("http://" + s.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// publish POSTs one message.
func (s *server) publish(topic, data string) error {
	resp, err := httpc.Post("http://"+s.api+"/api/publish", "application/json",
		strings.NewReader(fmt.Sprintf(`{"topic":%q,"data":%s}`, topic, data)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("publish: %d %s", resp.StatusCode, b)
	}
	var r struct{ Seq uint64 }
	return json.NewDecoder(resp.Body).Decode(&r)
}

// terminate sends SIGTERM and returns the exit code.
func (s *server) terminate(t *testing.T, within time.Duration) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		return s.exitState.ExitCode()
	case <-time.After(within):
		t.Fatalf("wspushd did not exit within %v after SIGTERM\n%s", within, s.stderr.String())
		return -1
	}
}
