package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wsframe"
	"github.com/wspush/wspush/internal/wstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// Timeouts used by the helpers. They are generous upper bounds for waiting
// on an event, never expectations of how fast something happens.
const (
	waitLong  = 10 * time.Second
	waitShort = 5 * time.Second
	pollEvery = 5 * time.Millisecond
)

// message is one OnMessage call, with its payload copied.
type message struct {
	Op      ws.OpCode
	Payload []byte
}

func (m message) String() string {
	if len(m.Payload) > 40 {
		return fmt.Sprintf("%s(%d bytes %q…)", opName(m.Op), len(m.Payload), m.Payload[:40])
	}
	return fmt.Sprintf("%s(%q)", opName(m.Op), m.Payload)
}

// opName names an opcode for test messages.
func opName(op ws.OpCode) string {
	switch op {
	case ws.OpContinuation:
		return "continuation"
	case ws.OpText:
		return "text"
	case ws.OpBinary:
		return "binary"
	case ws.OpClose:
		return "close"
	case ws.OpPing:
		return "ping"
	case ws.OpPong:
		return "pong"
	}
	return fmt.Sprintf("op%d", op)
}

// refusal is one OnRefused call.
type refusal struct {
	Status int
	Reason string
}

// connRec is what the test handler recorded about one connection.
type connRec struct {
	conn    *Conn
	req     Request       // what Accept saw; zero when Accept was not called
	msgs    chan message  // OnMessage payloads, copied
	closed  chan struct{} // closed when OnClose ran
	cause   error         // OnClose's cause; read after closed
	nClose  atomic.Int32  // OnClose calls; must end at exactly 1
	refused chan refusal  // OnRefused calls for this connection
}

func newConnRec(c *Conn) *connRec {
	return &connRec{
		conn:    c,
		msgs:    make(chan message, 4096),
		closed:  make(chan struct{}),
		refused: make(chan refusal, 4),
	}
}

// testHandler records every callback. Accept can refuse through accept;
// onMessage adds behaviour after the payload was recorded.
type testHandler struct {
	accept    func(c *Conn, r *Request) error
	onMessage func(c *Conn, op ws.OpCode, p []byte)
	onClose   func(c *Conn) // after the close was recorded

	mu     sync.Mutex
	byAddr map[string]*connRec // by client address (the Conn's RemoteAddr)

	accepted chan *connRec // every accepted connection
	refused  chan refusal  // every refusal, all connections
	closes   chan error    // every OnClose cause, all connections

	overflow    atomic.Int64 // callbacks that could not be recorded (channel full)
	doubleClose atomic.Int64 // OnClose called more than once for a connection
	wantPanics  atomic.Bool  // the test provokes panics on purpose
}

func newTestHandler() *testHandler {
	return &testHandler{
		byAddr:   make(map[string]*connRec),
		accepted: make(chan *connRec, 1024),
		refused:  make(chan refusal, 1024),
		closes:   make(chan error, 4096),
	}
}

// recFor returns the connection's record, creating it for connections the
// handler meets first in OnRefused or OnClose.
func (h *testHandler) recFor(c *Conn) *connRec {
	if r, ok := c.Value().(*connRec); ok {
		return r
	}
	r := newConnRec(c)
	c.SetValue(r)
	h.mu.Lock()
	h.byAddr[c.RemoteAddr().String()] = r
	h.mu.Unlock()
	return r
}

func (h *testHandler) Accept(c *Conn, r *Request) error {
	rec := newConnRec(c)
	rec.req = *r
	c.SetValue(rec)
	h.mu.Lock()
	h.byAddr[c.RemoteAddr().String()] = rec
	h.mu.Unlock()
	if h.accept != nil {
		if err := h.accept(c, r); err != nil {
			return err
		}
	}
	select {
	case h.accepted <- rec:
	default:
		h.overflow.Add(1)
	}
	return nil
}

func (h *testHandler) OnRefused(c *Conn, status int, reason string) {
	rf := refusal{Status: status, Reason: reason}
	select {
	case h.recFor(c).refused <- rf:
	default:
		h.overflow.Add(1)
	}
	select {
	case h.refused <- rf:
	default:
		h.overflow.Add(1)
	}
}

func (h *testHandler) OnMessage(c *Conn, op ws.OpCode, p []byte) {
	m := message{Op: op, Payload: bytes.Clone(p)}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	select {
	case h.recFor(c).msgs <- m:
	default:
		h.overflow.Add(1)
	}
	if h.onMessage != nil {
		h.onMessage(c, op, p)
	}
}

func (h *testHandler) OnClose(c *Conn, cause error) {
	r := h.recFor(c)
	if r.nClose.Add(1) != 1 {
		h.doubleClose.Add(1)
		return
	}
	r.cause = cause
	close(r.closed)
	select {
	case h.closes <- cause:
	default:
		h.overflow.Add(1)
	}
	if h.onClose != nil {
		h.onClose(c)
	}
}

// lookup returns the record of the server side of client connection nc.
func (h *testHandler) lookup(t testing.TB, nc net.Conn) *connRec {
	t.Helper()
	addr := nc.LocalAddr().String()
	var rec *connRec
	testutil.CheckFor(t, waitShort, pollEvery, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if rec = h.byAddr[addr]; rec == nil {
			return fmt.Errorf("no server connection for client %s", addr)
		}
		return nil
	})
	return rec
}

// echoReplies makes the handler answer every message with SendReply.
func echoReplies(c *Conn, op ws.OpCode, p []byte) { c.SendReply(p) }

// testServer is an in-process Server on 127.0.0.1:0.
type testServer struct {
	srv      *Server
	h        *testHandler
	addr     string
	serveErr chan error // Serve's return value
}

type serverOpt func(*ServerOptions)

// startServer starts a Server for the test's lifetime; Shutdown runs in
// Cleanup, after which the handler's invariants are checked.
func startServer(t testing.TB, cfg Config, h *testHandler, opts ...serverOpt) *testServer {
	t.Helper()
	if h == nil {
		h = newTestHandler()
	}
	so := ServerOptions{
		Handler: h,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&so)
	}
	srv, err := NewServer(cfg, so)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_ = srv.Shutdown(ctx)
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, h: h, addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	go func() { ts.serveErr <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.serveErr:
			if err != nil {
				t.Errorf("Serve returned %v after Shutdown, want nil", err)
			}
		case <-time.After(waitShort):
			t.Errorf("Serve did not return after Shutdown")
		}
		if n := h.doubleClose.Load(); n != 0 {
			t.Errorf("OnClose ran more than once for %d connections", n)
		}
		if n := srv.Stats().Panics.Load(); n != 0 && !h.wantPanics.Load() {
			t.Errorf("%d handler panics", n)
		}
		if n := h.overflow.Load(); n != 0 {
			t.Errorf("test handler could not record %d callbacks", n)
		}
	})
	return ts
}

// dial upgrades a raw client; it is closed in Cleanup.
func (ts *testServer) dial(t testing.TB) *wstest.Client {
	t.Helper()
	c, err := wstest.Dial(ts.addr, "/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialRec upgrades a client and returns the server side's record too.
func (ts *testServer) dialRec(t testing.TB) (*wstest.Client, *connRec) {
	t.Helper()
	c := ts.dial(t)
	return c, ts.h.lookup(t, c.Conn)
}

// rawConn opens a TCP connection without upgrading; closed in Cleanup.
func (ts *testServer) rawConn(t testing.TB) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, waitShort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// upgradeRequest is a valid upgrade request for target.
func upgradeRequest(target string, extra ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: test.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", target)
	for _, e := range extra {
		b.WriteString(e)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// newClient wraps an upgraded connection whose response was read through br.
func newClient(nc net.Conn, br *bufio.Reader) *wstest.Client {
	return &wstest.Client{Conn: nc, R: br}
}

// write sends raw bytes, failing the test on error.
func write(t testing.TB, c *wstest.Client, b []byte) {
	t.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(waitShort))
	defer c.Conn.SetWriteDeadline(time.Time{})
	if _, err := c.Conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// send writes frames in one write, failing the test on error.
func send(t testing.TB, c *wstest.Client, fs ...wstest.Frame) {
	t.Helper()
	var b []byte
	for _, f := range fs {
		b = append(b, f.Encode()...)
	}
	write(t, c, b)
}

// barrier proves that the server has handled everything the client sent
// before it: it sends a ping with a unique payload and reads until the pong
// for it, returning the frames it skipped on the way. The server handles a
// connection's frames in order, so every OnMessage for earlier frames has
// returned by the time the pong is queued.
var barrierSeq atomic.Int64

func barrier(t testing.TB, c *wstest.Client) (skipped []frameOut) {
	t.Helper()
	tag := []byte(fmt.Sprintf("barrier-%d", barrierSeq.Add(1)))
	send(t, c, wstest.Frame{Op: ws.OpPing, Payload: tag})
	deadline := time.Now().Add(waitShort)
	for {
		h, p, err := c.Read(time.Until(deadline))
		if err != nil {
			t.Fatalf("barrier: reading pong: %v (skipped %v)", err, skipped)
		}
		if h.OpCode == ws.OpPong && bytes.Equal(p, tag) {
			return skipped
		}
		skipped = append(skipped, frameOut{Op: h.OpCode, Payload: p})
	}
}

// frameOut is one frame the server sent.
type frameOut struct {
	Op      ws.OpCode
	Payload []byte
}

func (f frameOut) String() string {
	if f.Op == ws.OpClose && len(f.Payload) >= 2 {
		return fmt.Sprintf("close(%d %q)", int(f.Payload[0])<<8|int(f.Payload[1]), f.Payload[2:])
	}
	if len(f.Payload) > 40 {
		return fmt.Sprintf("%s(%d bytes)", opName(f.Op), len(f.Payload))
	}
	return fmt.Sprintf("%s(%q)", opName(f.Op), f.Payload)
}

// expectMsg waits for the next recorded message of rec.
func expectMsg(t testing.TB, rec *connRec) message {
	t.Helper()
	select {
	case m := <-rec.msgs:
		return m
	case <-time.After(waitShort):
		t.Fatalf("no message delivered within %v", waitShort)
		return message{}
	}
}

// expectNoMsg fails if rec holds a recorded message. Call it after a barrier.
func expectNoMsg(t testing.TB, rec *connRec) {
	t.Helper()
	select {
	case m := <-rec.msgs:
		t.Fatalf("unexpected message delivered: %v", m)
	default:
	}
}

// expectClose reads until a close frame and checks its code (and reason
// unless reason is "*").
func expectClose(t testing.TB, c *wstest.Client, code ws.StatusCode, reason string) {
	t.Helper()
	cf, err := c.ExpectClose(waitShort)
	if err != nil {
		t.Fatalf("want close %d, got error %v", code, err)
	}
	if cf.Code != code || (reason != "*" && cf.Reason != reason) {
		t.Fatalf("close = %d %q, want %d %q", cf.Code, cf.Reason, code, reason)
	}
}

// expectEOF reads until the server ends the TCP stream; frames on the way
// fail the test unless they are pings.
func expectEOF(t testing.TB, c *wstest.Client) {
	t.Helper()
	deadline := time.Now().Add(waitShort)
	for {
		h, p, err := c.Read(time.Until(deadline))
		if isEnded(err) {
			return
		}
		if err != nil {
			t.Fatalf("want EOF, got %v", err)
		}
		if h.OpCode != ws.OpPing {
			t.Fatalf("want EOF, got frame %v", frameOut{Op: h.OpCode, Payload: p})
		}
	}
}

// isEnded reports a read or write error that means the peer closed.
func isEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// waitClosed waits for OnClose of rec and returns its cause.
func waitClosed(t testing.TB, rec *connRec) error {
	t.Helper()
	select {
	case <-rec.closed:
		return rec.cause
	case <-time.After(waitLong):
		t.Fatalf("OnClose not called within %v", waitLong)
		return nil
	}
}

// waitOpen waits until the server's Open count is n.
func waitOpen(t testing.TB, ts *testServer, n int64) {
	t.Helper()
	testutil.CheckFor(t, waitLong, pollEvery, func() error {
		if got := ts.srv.Stats().Open.Load(); got != n {
			return fmt.Errorf("Stats().Open = %d, want %d", got, n)
		}
		return nil
	})
}

// waitStat waits until a counter reaches want.
func waitStat(t testing.TB, name string, v *atomic.Int64, want int64) {
	t.Helper()
	testutil.CheckFor(t, waitLong, pollEvery, func() error {
		if got := v.Load(); got != want {
			return fmt.Errorf("Stats().%s = %d, want %d", name, got, want)
		}
		return nil
	})
}

// waitQueuedEmpty waits until no frame is waiting in any out queue.
func waitQueuedEmpty(t testing.TB, ts *testServer) {
	t.Helper()
	testutil.CheckFor(t, waitLong, pollEvery, func() error {
		if n := ts.srv.Queued(); n != 0 {
			return fmt.Errorf("%d frames queued, want 0", n)
		}
		return nil
	})
}

// dataFrame encodes a server binary frame of size bytes whose payload starts
// and ends with seq (8 bytes each, big endian); size must be at least 16.
func dataFrame(seq uint64, size int) *bpool.Frame {
	f := bpool.NewFrame(size + 10)
	f.B = wsframe.AppendHeader(f.B, ws.OpBinary, size)
	start := len(f.B)
	f.B = f.B[:start+size]
	p := f.B[start:]
	clear(p)
	putSeq(p[:8], seq)
	putSeq(p[size-8:], seq)
	return f
}

// textFrame encodes a server text frame.
func textFrame(s string) *bpool.Frame {
	f := wsframe.NewText(len(s))
	f.B = append(f.B, s...)
	return f
}

func putSeq(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getSeq(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

// readSeq reads one binary frame written by dataFrame and returns its seq.
func readSeq(t testing.TB, c *wstest.Client, size int) uint64 {
	t.Helper()
	h, p, err := c.Read(waitLong)
	if err != nil {
		t.Fatalf("reading data frame: %v", err)
	}
	if h.OpCode != ws.OpBinary || len(p) != size {
		t.Fatalf("got %v, want a %d-byte binary frame", frameOut{Op: h.OpCode, Payload: p}, size)
	}
	seq := getSeq(p)
	if tail := getSeq(p[size-8:]); tail != seq {
		t.Fatalf("frame corrupted: head seq %d, tail seq %d", seq, tail)
	}
	return seq
}
