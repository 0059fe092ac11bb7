package wsconn

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzUpgradeRequest sends arbitrary bytes as the upgrade request, split into
// two writes, and checks that the server answers with a well-formed HTTP
// response (101 only for a valid upgrade of an accepted request, an error
// status otherwise) or, for an incomplete request, keeps waiting; that it
// never panics; and that the connection is gone once the client hangs up.
func FuzzUpgradeRequest(f *testing.F) {
	valid := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for _, seed := range []string{
		valid,
		strings.Replace(valid, "13", "8", 1),
		strings.Replace(valid, "GET", "POST", 1),
		strings.Replace(valid, "HTTP/1.1", "HTTP/1.0", 1),
		strings.Replace(valid, "Host: x\r\n", "", 1),
		strings.Replace(valid, "Upgrade: websocket", "Upgrade: h2c", 1),
		strings.Replace(valid, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1),
		"GET /ws HTTP/1.1\r\nHost x\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
		"GET /ws HTTP/1.1\r\n" + strings.Repeat("X-Pad: p\r\n", 200) + "\r\n",
		valid + "\x81\x82\x00\x00\x00\x00{}",
		"\r\n\r\n",
	} {
		f.Add([]byte(seed), uint16(len(seed)/2))
	}
	h := newTestHandler()
	ts := startServer(f, Config{MaxHandshake: 2048, PingInterval: -1, IdleTimeout: -1}, h)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		if len(data) > 4096 {
			t.Skip("input too large")
		}
		waitOpenWithin(t, ts, 0, 4*time.Second)
		nc := ts.rawConn(t)
		cut := min(int(split), len(data))
		nc.Write(data[:cut])
		nc.Write(data[cut:])
		complete := strings.Contains(string(data), "\r\n\r\n") || len(data) >= 2048
		wait := 50 * time.Millisecond // an incomplete request gets no answer
		if complete {
			wait = 2 * time.Second
		}
		nc.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		switch {
		case err == nil:
			resp.Body.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode < 400 {
				t.Fatalf("status %d: want 101 or an error status", resp.StatusCode)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols && !strings.HasPrefix(string(data), "GET ") {
				t.Fatalf("101 for a request that is not a GET: %q", data)
			}
		case complete && isTimeout(err):
			t.Fatalf("no response to a complete request %q", data)
		}
		nc.Close()
		waitOpenWithin(t, ts, 0, 4*time.Second)
		if p := ts.srv.Stats().Panics.Load(); p != 0 {
			t.Fatalf("%d handler panics", p)
		}
	})
}

func isTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}
