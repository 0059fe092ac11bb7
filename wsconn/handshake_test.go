package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

// readResponse reads the server's HTTP response (or EOF) on nc.
func readResponse(t testing.TB, nc net.Conn) (*http.Response, *bufio.Reader, string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(waitShort))
	defer nc.SetReadDeadline(time.Time{})
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("reading the body: %v", err)
	}
	resp.Body.Close()
	return resp, br, string(body)
}

func TestHandshakeByteByByte(t *testing.T) {
	h := newTestHandler()
	h.onMessage = echoReplies
	ts := startServer(t, Config{}, h)
	nc := ts.rawConn(t)
	req := upgradeRequest("/ws?x=1", "Origin: https://example.com", "Authorization: Bearer t0k3n",
		"X-Forwarded-For: 203.0.113.7", "x-forwarded-for: 10.0.0.1")
	// One byte per write, paced to spread the request over about 300ms.
	pause := 300 * time.Millisecond / time.Duration(len(req))
	for i := range req {
		if _, err := nc.Write(req[i : i+1]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
	}
	resp, br, _ := readResponse(t, nc)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	c := newClient(nc, br)
	rec := h.lookup(t, nc)
	want := Request{URI: "/ws?x=1", Host: "test.local", Origin: "https://example.com", Authorization: "Bearer t0k3n",
		ForwardedFor: "203.0.113.7, 10.0.0.1"}
	if rec.req != want {
		t.Fatalf("Accept saw %+v, want %+v", rec.req, want)
	}
	send(t, c, wstest.Frame{Op: ws.OpText, Payload: []byte("echo me")})
	if got, err := c.ReadText(waitShort); err != nil || got != "echo me" {
		t.Fatalf("echo %q %v", got, err)
	}
}

// TestHandshakeWithFrames sends the request and the first frames in one
// write: the bytes after the request are frames.
func TestHandshakeWithFrames(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tests := []struct {
		name string
		tail []byte
	}{
		{"complete frames", append(wstest.Frame{Op: ws.OpText, Payload: []byte("first")}.Encode(),
			wstest.Frame{Op: ws.OpPing, Payload: []byte("p")}.Encode()...)},
		{"a partial frame", append(wstest.Frame{Op: ws.OpText, Payload: []byte("first")}.Encode(),
			wstest.Frame{Op: ws.OpPing, Payload: []byte("p")}.Encode()[:3]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nc := ts.rawConn(t)
			if _, err := nc.Write(append(upgradeRequest("/ws"), tc.tail...)); err != nil {
				t.Fatal(err)
			}
			resp, br, _ := readResponse(t, nc)
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", resp.StatusCode)
			}
			c := newClient(nc, br)
			rec := ts.h.lookup(t, nc)
			if m := expectMsg(t, rec); string(m.Payload) != "first" {
				t.Fatalf("delivered %v", m)
			}
			full := wstest.Frame{Op: ws.OpPing, Payload: []byte("p")}.Encode()
			if n := len(tc.tail) - len(wstest.Frame{Op: ws.OpText, Payload: []byte("first")}.Encode()); n < len(full) {
				write(t, c, full[n:])
			}
			h, p, err := c.Read(waitShort)
			if err != nil || h.OpCode != ws.OpPong || string(p) != "p" {
				t.Fatalf("got %v %q %v, want pong", h.OpCode, p, err)
			}
		})
	}
}

func TestHandshakeTooLarge(t *testing.T) {
	h := newTestHandler()
	ts := startServer(t, Config{MaxHandshake: 1024}, h)
	tests := []struct {
		name     string
		req      []byte
		leftover bool // the client sent more than the server reads before refusing
	}{
		{"exactly MaxHandshake bytes without an end", []byte("GET /ws HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 1024-25)), false},
		{"one long header", upgradeRequest("/ws", "X-Pad: "+strings.Repeat("p", 2000)), true},
		{"many headers", upgradeRequest("/ws", strings.Repeat("X-Pad: ppppppppppppppppppppppppppppppppppppppp\r\n", 40)+"X-End: 1"), true},
		{"no end in sight", []byte("GET /ws HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 3000)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			failed := ts.srv.Stats().HandshakeFailed.Load()
			nc := ts.rawConn(t)
			if _, err := nc.Write(tc.req); err != nil {
				t.Fatal(err)
			}
			resp, _, body := readResponse(t, nc)
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || body != "request header too large" {
				t.Fatalf("got %d %q, want 431", resp.StatusCode, body)
			}
			rec := ts.h.lookup(t, nc)
			if rf := <-rec.refused; rf.Status != 431 {
				t.Fatalf("OnRefused status %d", rf.Status)
			}
			nc.Close()
			waitClosed(t, rec)
			if got := ts.srv.Stats().HandshakeFailed.Load(); got != failed+1 {
				t.Fatalf("HandshakeFailed = %d, want %d", got, failed+1)
			}
		})
	}
}

// TestHandshakeLimitExact sends a complete request a few bytes over
// MaxHandshake in one write.
func TestHandshakeLimitExact(t *testing.T) {
	ts := startServer(t, Config{MaxHandshake: 1000}, nil)
	req := upgradeRequest("/ws", "X-Pad: ")
	pad := 1010 - len(req)
	req = upgradeRequest("/ws", "X-Pad: "+strings.Repeat("p", pad))
	if len(req) != 1010 {
		t.Fatalf("request is %d bytes", len(req))
	}
	nc := ts.rawConn(t)
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	resp, _, _ := readResponse(t, nc)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte request with MaxHandshake 1000 got %d, want 431", len(req), resp.StatusCode)
	}
}

func TestHandshakeRefused(t *testing.T) {
	h := newTestHandler()
	h.accept = func(c *Conn, r *Request) error {
		var status int
		var reason string
		if _, err := fmt.Sscanf(r.URI, "/refuse/%d/%s", &status, &reason); err == nil {
			return &HTTPError{Status: status, Reason: reason}
		}
		if r.URI == "/plain-error" {
			return errors.New("secret detail")
		}
		return nil
	}
	ts := startServer(t, Config{}, h)
	tests := []struct {
		name   string
		target string
		status int
		body   string
	}{
		{"403", "/refuse/403/go-away", 403, "go-away"},
		{"404", "/refuse/404/not-here", 404, "not-here"},
		{"400", "/refuse/400/bad-topic", 400, "bad-topic"},
		{"503", "/refuse/503/busy", 503, "busy"},
		{"non-HTTPError is a 500 without details", "/plain-error", 500, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			failed := ts.srv.Stats().HandshakeFailed.Load()
			c, err := wstest.Dial(ts.addr, tc.target, nil)
			if !errors.Is(err, wstest.ErrStatus) || c == nil {
				t.Fatalf("Dial: %v, want a refusal", err)
			}
			if c.Resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", c.Resp.StatusCode, tc.status)
			}
			if !strings.HasSuffix(err.Error(), fmt.Sprintf("%d %s", tc.status, tc.body)) {
				t.Fatalf("refusal %q, want body %q", err, tc.body)
			}
			rf := <-h.refused
			if rf.Status != tc.status {
				t.Fatalf("OnRefused(%d, %q), want status %d", rf.Status, rf.Reason, tc.status)
			}
			rec := h.lookup(t, c.Conn)
			waitClosed(t, rec)
			if got := ts.srv.Stats().HandshakeFailed.Load(); got != failed+1 {
				t.Fatalf("HandshakeFailed = %d, want %d", got, failed+1)
			}
		})
	}
	if n := ts.srv.Stats().Upgraded.Load(); n != 0 {
		t.Fatalf("Upgraded = %d", n)
	}
	waitOpen(t, ts, 0)
}

func TestHandshakeMalformed(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"not websocket", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bad method", "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 405},
		{"bad version", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426},
		{"no Host", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"HTTP/1.0", "GET /ws HTTP/1.0\r\nHost: x\r\n\r\n", 505},
		{"garbage request line", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400},
		{"malformed header line", "GET /ws HTTP/1.1\r\nHost x\r\n\r\n", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nc := ts.rawConn(t)
			if _, err := nc.Write([]byte(tc.req)); err != nil {
				t.Fatal(err)
			}
			resp, _, _ := readResponse(t, nc)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			rec := ts.h.lookup(t, nc)
			nc.Close()
			waitClosed(t, rec)
		})
	}
}

func TestHandshakeMaxConns(t *testing.T) {
	ts := startServer(t, Config{}, nil, func(o *ServerOptions) { o.MaxConns = 1 })
	c1, rec1 := ts.dialRec(t)
	_, err := wstest.Dial(ts.addr, "/ws", nil)
	if !errors.Is(err, wstest.ErrStatus) || !strings.Contains(err.Error(), "503 too many connections") {
		t.Fatalf("second Dial: %v, want 503", err)
	}
	if got := ts.srv.Upgraded(); got != 1 {
		t.Fatalf("Upgraded() = %d", got)
	}
	c1.Close()
	waitClosed(t, rec1)
	// The place is given back when the connection leaves the registry,
	// just after OnClose returns.
	testutil.CheckFor(t, waitLong, pollEvery, func() error {
		if got := ts.srv.Upgraded(); got != 0 {
			return fmt.Errorf("Upgraded() = %d after close", got)
		}
		return nil
	})
	ts.dial(t) // room again
}

func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, Config{HandshakeTimeout: 300 * time.Millisecond, SweepInterval: 50 * time.Millisecond}, nil)
	tests := []struct {
		name string
		sent string
	}{
		{"nothing sent", ""},
		{"half a request", string(upgradeRequest("/ws")[:40])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := ts.srv.Stats()
			timeouts, failed, aborted := st.HandshakeTimeouts.Load(), st.HandshakeFailed.Load(), st.HandshakeAborted.Load()
			nc := ts.rawConn(t)
			if tc.sent != "" {
				if _, err := nc.Write([]byte(tc.sent)); err != nil {
					t.Fatal(err)
				}
			}
			rec := ts.h.lookup(t, nc)
			// The server drops the connection without a response.
			nc.SetReadDeadline(time.Now().Add(waitShort))
			n, err := nc.Read(make([]byte, 1))
			if n != 0 || !isEnded(err) {
				t.Fatalf("read %d bytes, %v; want EOF", n, err)
			}
			if cause := waitClosed(t, rec); !errors.Is(cause, ErrHandshakeTimeout) {
				t.Fatalf("OnClose cause %v, want ErrHandshakeTimeout", cause)
			}
			// Counted once, as a timeout: not as a refusal, not as the
			// client leaving.
			// Counted by the sweeper right after its end made the close
			// visible: wait for it rather than race it.
			waitStat(t, "HandshakeTimeouts", &st.HandshakeTimeouts, timeouts+1)
			if f, a := st.HandshakeFailed.Load(), st.HandshakeAborted.Load(); f != failed || a != aborted {
				t.Fatalf("HandshakeFailed %d -> %d, HandshakeAborted %d -> %d: want both unchanged", failed, f, aborted, a)
			}
		})
	}
}

// TestHandshakeAbortedIsNotATimeout: a client that leaves before finishing
// its upgrade request is counted as aborted, not as a timeout (the metric
// "timeout" used to be derived from every failure that was not a refusal).
func TestHandshakeAbortedIsNotATimeout(t *testing.T) {
	ts := startServer(t, Config{HandshakeTimeout: time.Minute}, nil)
	st := ts.srv.Stats()
	for i, sent := range []string{"", string(upgradeRequest("/ws")[:40])} {
		nc := ts.rawConn(t)
		if sent != "" {
			if _, err := nc.Write([]byte(sent)); err != nil {
				t.Fatal(err)
			}
		}
		nc.Close() // the record appears with OnClose
		if cause := waitClosed(t, ts.h.lookup(t, nc)); errors.Is(cause, ErrHandshakeTimeout) {
			t.Fatalf("cause %v, want the client's EOF", cause)
		}
		if got := st.HandshakeAborted.Load(); got != int64(i+1) {
			t.Fatalf("HandshakeAborted = %d, want %d", got, i+1)
		}
	}
	if n, f := st.HandshakeTimeouts.Load(), st.HandshakeFailed.Load(); n != 0 || f != 0 {
		t.Fatalf("HandshakeTimeouts = %d, HandshakeFailed = %d; want 0, 0", n, f)
	}
}

// TestHandshakeSlowlorisDoesNotBlock: many stalled handshakes hold no
// worker; a normal client still upgrades and is served.
func TestHandshakeSlowlorisDoesNotBlock(t *testing.T) {
	h := newTestHandler()
	h.onMessage = echoReplies
	ts := startServer(t, Config{Workers: 4}, h)
	const stalled = 200
	half := upgradeRequest("/ws")[:60]
	var wg sync.WaitGroup
	errs := make(chan error, stalled)
	conns := make([]net.Conn, stalled)
	for i := range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", ts.addr, waitShort)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = nc
			if _, err := nc.Write(half); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitOpen(t, ts, stalled)

	done := make(chan error, 1)
	go func() {
		c, err := wstest.Dial(ts.addr, "/ws", nil)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		for i := range 10 {
			msg := fmt.Sprintf("hello %d", i)
			if err := c.WriteText(msg); err != nil {
				done <- err
				return
			}
			got, err := c.ReadText(waitLong)
			if err != nil || got != msg {
				done <- fmt.Errorf("echo %q %v, want %q", got, err, msg)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLong):
		t.Fatal("a normal client was not served within 10s next to stalled handshakes")
	}
	if got := ts.srv.Stats().Open.Load(); got < stalled {
		t.Fatalf("Open = %d, stalled handshakes were dropped", got)
	}
}

// TestHandshakeRequestCopied: Request fields stay valid after Accept.
func TestHandshakeRequestCopied(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	var recs []*connRec
	for i := range 3 {
		c, err := wstest.Dial(ts.addr, fmt.Sprintf("/ws?n=%d", i), http.Header{"Origin": {fmt.Sprintf("o%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		recs = append(recs, ts.h.lookup(t, c.Conn))
	}
	for i, rec := range recs {
		if want := fmt.Sprintf("/ws?n=%d", i); rec.req.URI != want || rec.req.Origin != fmt.Sprintf("o%d", i) {
			t.Fatalf("request %d = %+v", i, rec.req)
		}
	}
}

// staticHandler is the test handler that also serves two files.
type staticHandler struct {
	*testHandler
	files map[string][]byte
}

func (h *staticHandler) Static(path []byte) (string, []byte, bool) {
	b, ok := h.files[string(path)]
	return "text/javascript; charset=utf-8", b, ok
}

// TestStaticFiles: a plain GET for a file the handler serves gets the file
// (a big one through the writer's waits too) and the connection closes;
// anything else, and an upgrade request to the same path, goes on to the
// upgrade.
func TestStaticFiles(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: more than a socket takes at once
	sh := &staticHandler{testHandler: newTestHandler(), files: map[string][]byte{"/client.js": []byte("export const x = 1;\n"), "/big.js": big}}
	ts := startServer(t, Config{}, sh.testHandler, func(o *ServerOptions) { o.Handler = sh })
	for _, tc := range []struct {
		name, req  string
		status     int
		body       []byte
		wantCached bool
	}{
		{"file", "GET /client.js HTTP/1.1\r\nHost: x\r\n\r\n", 200, sh.files["/client.js"], true},
		{"file with a query", "GET /client.js?v=2 HTTP/1.1\r\nHost: x\r\n\r\n", 200, sh.files["/client.js"], true},
		{"big file", "GET /big.js HTTP/1.1\r\nHost: x\r\n\r\n", 200, big, true},
		{"unknown path", "GET /other.js HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil, false},
		{"not a GET", "POST /client.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, nil, false},
		{"an upgrade to the same path", string(upgradeRequest("/client.js")), 101, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := ts.rawConn(t)
			if _, err := nc.Write([]byte(tc.req)); err != nil {
				t.Fatal(err)
			}
			resp, br, body := readResponse(t, nc)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.body != nil && body != string(tc.body) {
				t.Fatalf("body of %d bytes, want %d", len(body), len(tc.body))
			}
			if got := resp.Header.Get("Cache-Control") != ""; got != tc.wantCached {
				t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			if tc.status == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
					t.Fatalf("Content-Type %q", ct)
				}
				nc.SetReadDeadline(time.Now().Add(waitShort))
				if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("after the file: %d bytes, %v; want EOF", n, err)
				}
			}
		})
	}
}
