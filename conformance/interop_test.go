package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/testutil"
)

// TestInteropCompression: real clients with their own permessage-deflate
// (Python websockets, Node's ws) negotiate it with wspushd --compression,
// publish compressed messages and read their compressed deliveries back,
// byte for byte. In CI a missing client is a failure; elsewhere a skip
// naming scripts/deps.sh.
func TestInteropCompression(t *testing.T) {
	root := moduleRoot(t)
	dir := filepath.Join(root, "conformance", "testdata", "interop")
	clients := []struct {
		name string
		cmd  func(t *testing.T) []string // the command line, or skips
		env  []string
	}{
		{name: "python-websockets", cmd: func(t *testing.T) []string {
			py := needPython(t)
			return []string{py, filepath.Join(dir, "client.py")}
		}},
		{name: "node-ws", cmd: func(t *testing.T) []string {
			node := testutil.RequireCommand(t, "node", "run scripts/deps.sh as root, or: apt-get install -y nodejs")
			if _, err := os.Stat(filepath.Join(root, "clients", "js", "node_modules", "ws", "package.json")); err != nil {
				testutil.MissingDependency(t, "the ws package in clients/js/node_modules", "make test-js installs it")
			}
			return []string{node, filepath.Join(dir, "client.cjs")}
		}, env: []string{"NODE_PATH=" + filepath.Join(root, "clients", "js", "node_modules")}},
	}
	bin := buildWspushd(t)
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			argv := cl.cmd(t)
			srv := startWspushd(t, bin, 65536, "--compression", "--client-publish")
			sizes := []string{"100", "2000", "30000"}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, argv[0], append(append(argv[1:], "ws://"+srv.ws+"/ws?topics=z"), sizes...)...)
			cmd.Env = append(os.Environ(), cl.env...)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("%s: %v\n%s%s", cl.name, err, out, stderr)
			}
			var res struct {
				Extensions string `json:"extensions"`
				Echoed     []int  `json:"echoed"`
			}
			if err := json.Unmarshal(out, &res); err != nil || len(res.Echoed) != len(sizes) {
				t.Fatalf("client output %q: %v", out, err)
			}
			if !strings.HasPrefix(res.Extensions, "permessage-deflate") {
				t.Fatalf("the client negotiated %q, want permessage-deflate", res.Extensions)
			}
			// The deliveries of 2,000 and 30,000 bytes went out compressed.
			if n := metric(t, srv.api, "wspush_messages_compressed_total"); n < 2 {
				t.Fatalf("wspush_messages_compressed_total = %d, want at least 2", n)
			}
			srv.stop(t)
		})
	}
}

// needPython returns a python3 that can import websockets: Debian's
// /usr/bin/python3 first (python3-websockets installs there), then PATH's.
func needPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import websockets").Run() == nil {
			return py
		}
	}
	testutil.MissingDependency(t, "python3's websockets module", "run scripts/deps.sh as root, or: apt-get install -y python3-websockets")
	return ""
}

// metric reads one counter from the server's /metrics.
func metric(t *testing.T, api, name string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", name, err))
	}
	return int64(v)
}
