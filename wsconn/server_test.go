package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

func TestNewServerNilHandler(t *testing.T) {
	if _, err := NewServer(Config{}, ServerOptions{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("NewServer without a Handler: %v, want ErrBadConfig", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{
		SendQueue: 64, WriteTimeout: 10 * time.Second, MaxMessage: 64 << 10, MaxHandshake: 8 << 10,
		PingInterval: 25 * time.Second, IdleTimeout: 60 * time.Second, ReadTimeout: 30 * time.Second, HandshakeTimeout: 10 * time.Second,
		CloseTimeout: 3 * time.Second, SweepInterval: time.Second, DrainWaves: 1, CompressionMinSize: 256,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
	off := Config{PingInterval: -1, IdleTimeout: -1, ReadTimeout: -1}.withDefaults()
	if off.PingInterval != -1 || off.IdleTimeout != -1 || off.ReadTimeout != -1 {
		t.Fatalf("negative ping/idle not kept: %+v", off)
	}
}

func TestParsePolicyAndMode(t *testing.T) {
	for _, p := range []SlowPolicy{DropOldest, DropNewest, CloseSlow} {
		t.Run(p.String(), func(t *testing.T) {
			got, err := ParseSlowPolicy(p.String())
			if err != nil || got != p {
				t.Fatalf("ParseSlowPolicy(%q) = %v, %v", p.String(), got, err)
			}
		})
	}
	for _, m := range []WriterMode{WriterOnDemand, WriterPersistent} {
		t.Run(m.String(), func(t *testing.T) {
			got, err := ParseWriterMode(m.String())
			if err != nil || got != m {
				t.Fatalf("ParseWriterMode(%q) = %v, %v", m.String(), got, err)
			}
		})
	}
	if _, err := ParseSlowPolicy("drop-all"); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("ParseSlowPolicy(bad): %v", err)
	}
	if _, err := ParseWriterMode("sometimes"); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("ParseWriterMode(bad): %v", err)
	}
}

func TestIdlePingAnswered(t *testing.T) {
	ts := startServer(t, Config{PingInterval: 200 * time.Millisecond, IdleTimeout: time.Second, SweepInterval: 50 * time.Millisecond}, nil)
	c, rec := ts.dialRec(t)
	// Answer every ping for 2s, twice the idle timeout.
	end := time.Now().Add(2 * time.Second)
	pings := 0
	for {
		h, p, err := c.Read(time.Until(end))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if h.OpCode != ws.OpPing {
			t.Fatalf("got %v, want only pings", frameOut{h.OpCode, p})
		}
		pings++
		send(t, c, wstest.Frame{Op: ws.OpPong, Payload: p})
	}
	if pings == 0 {
		t.Fatal("no ping in 2s with PingInterval 200ms")
	}
	select {
	case <-rec.closed:
		t.Fatalf("connection closed: %v", rec.cause)
	default:
	}
	// Still usable.
	if skipped := barrier(t, c); len(skipped) > 0 {
		for _, f := range skipped {
			if f.Op != ws.OpPing {
				t.Fatalf("unexpected frame %v", f)
			}
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, Config{PingInterval: 200 * time.Millisecond, IdleTimeout: time.Second, SweepInterval: 50 * time.Millisecond}, nil)
	start := time.Now()
	c, rec := ts.dialRec(t)
	// The client sends nothing, not even pongs.
	cf, err := c.ExpectClose(waitShort)
	if err != nil {
		t.Fatal(err)
	}
	if cf.Code != ws.StatusGoingAway || cf.Reason != "idle timeout" {
		t.Fatalf("close %d %q, want 1001 \"idle timeout\"", cf.Code, cf.Reason)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("closed as idle after %v, before IdleTimeout", el)
	}
	expectEOF(t, c)
	send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1001, "")})
	cause := waitClosed(t, rec)
	var ce *CloseError
	if !errors.As(cause, &ce) || ce.Code != 1001 {
		t.Fatalf("OnClose cause %v", cause)
	}
	if got := ts.srv.Stats().CloseSent(closeSlot(1001)); got != 1 {
		t.Fatalf("CloseSent(1001) = %d", got)
	}
	if st := ts.srv.Stats(); st.IdleClosed.Load() != 1 || st.ReadTimeoutClosed.Load() != 0 || st.SlowClosed.Load() != 0 {
		t.Fatalf("closes counted: idle %d, read timeout %d, slow %d; want 1, 0, 0",
			st.IdleClosed.Load(), st.ReadTimeoutClosed.Load(), st.SlowClosed.Load())
	}
}

// TestIdleDataKeepsAlive: data counts as life as much as pongs do.
func TestIdleDataKeepsAlive(t *testing.T) {
	ts := startServer(t, Config{PingInterval: -1, IdleTimeout: 500 * time.Millisecond, SweepInterval: 50 * time.Millisecond}, nil)
	c, rec := ts.dialRec(t)
	end := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(end); i++ {
		send(t, c, wstest.Frame{Op: ws.OpText, Payload: []byte(fmt.Sprint(i))})
		expectMsg(t, rec)
		// Nothing comes from the server: pings are off and the client is
		// active.
		c.Conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Conn.Read(make([]byte, 1))
		c.Conn.SetReadDeadline(time.Time{})
		var ne net.Error
		if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("server sent something or closed: %d bytes, %v", n, err)
		}
	}
	select {
	case <-rec.closed:
		t.Fatalf("connection closed: %v", rec.cause)
	default:
	}
}

func TestShutdown(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	st := ts.srv.Stats()
	a, recA := ts.dialRec(t)
	b, recB := ts.dialRec(t)
	// A does not read: its frames are still queued (or in socket buffers)
	// when Shutdown starts.
	const n = 24
	for i := range n {
		if !recA.conn.Send(dataFrame(uint64(i), bigFrame)) {
			t.Fatal("Send dropped")
		}
	}
	recB.conn.Send(textFrame("for b"))
	recB.conn.SendReply([]byte("reply for b"))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	// Every frame queued before Shutdown arrives, then 1001.
	for i := range n {
		if seq := readSeq(t, a, bigFrame); seq != uint64(i) {
			t.Fatalf("A got seq %d, want %d", seq, i)
		}
	}
	expectClose(t, a, ws.StatusGoingAway, "server shutting down")
	expectEOF(t, a)
	for _, want := range []string{"for b", "reply for b"} {
		if got, err := b.ReadText(waitShort); err != nil || got != want {
			t.Fatalf("B got %q %v, want %q", got, err, want)
		}
	}
	expectClose(t, b, ws.StatusGoingAway, "server shutting down")
	// B completes the closing handshake; A just hangs up.
	send(t, b, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1001, "")})
	a.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-ts.serveErr:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil", err)
		}
	case <-time.After(waitShort):
		t.Fatal("Serve did not return after Shutdown")
	}
	ts.serveErr <- nil // for the Cleanup check
	waitClosed(t, recA)
	var ce *CloseError
	if cause := waitClosed(t, recB); !errors.As(cause, &ce) || ce.Code != 1001 {
		t.Fatalf("B's OnClose cause %v, want the answered 1001", cause)
	}
	if got := st.Open.Load(); got != 0 {
		t.Fatalf("Open = %d after Shutdown", got)
	}
	if got := st.Delivered.Load(); got != n+1 {
		t.Fatalf("Delivered = %d, want %d", got, n+1)
	}
	if got := st.LostClosed.Load(); got != 0 {
		t.Fatalf("LostClosed = %d", got)
	}
	// The listener is closed and Serve refuses to run again.
	if nc, err := net.DialTimeout("tcp", ts.addr, waitShort); err == nil {
		nc.Close()
		t.Fatal("dial after Shutdown succeeded")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ts.srv.Serve(ln); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrClosed", err)
	}
}

func TestShutdownDropsHandshakes(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c, rec := ts.dialRec(t)
	var half []net.Conn
	for range 3 {
		nc := ts.rawConn(t)
		if _, err := nc.Write(upgradeRequest("/ws")[:30]); err != nil {
			t.Fatal(err)
		}
		half = append(half, nc)
	}
	waitOpen(t, ts, 4)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	for i, nc := range half {
		nc.SetReadDeadline(time.Now().Add(waitShort))
		n, err := nc.Read(make([]byte, 512))
		if n != 0 || !isEnded(err) {
			t.Fatalf("handshaking client %d: read %d bytes, %v; want EOF without a response", i, n, err)
		}
	}
	expectClose(t, c, ws.StatusGoingAway, "server shutting down")
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Shutdown did not return")
	}
	waitClosed(t, rec)
	if got := ts.srv.Stats().Open.Load(); got != 0 {
		t.Fatalf("Open = %d", got)
	}
}

// TestShutdownDeadline: a client that never answers the close is torn down
// when the context ends; Shutdown reports the context's error.
func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, Config{CloseTimeout: time.Minute}, nil)
	c, rec := ts.dialRec(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if cause := waitClosed(t, rec); !errors.Is(cause, ErrShutdown) {
		t.Fatalf("OnClose cause %v, want ErrShutdown", cause)
	}
	expectClose(t, c, ws.StatusGoingAway, "server shutting down")
	expectEOF(t, c)
}

func TestHandlerPanic(t *testing.T) {
	h := newTestHandler()
	h.wantPanics.Store(true)
	h.onMessage = func(c *Conn, op ws.OpCode, p []byte) {
		if string(p) == "panic" {
			panic("test panic")
		}
		c.SendReply(p)
	}
	ts := startServer(t, Config{}, h)
	good, _ := ts.dialRec(t)
	bad, badRec := ts.dialRec(t)
	send(t, bad, wstest.Frame{Op: ws.OpText, Payload: []byte("panic")})
	cause := waitClosed(t, badRec)
	if cause == nil || ts.srv.Stats().Panics.Load() != 1 {
		t.Fatalf("cause %v, panics %d", cause, ts.srv.Stats().Panics.Load())
	}
	expectEOF(t, bad)
	// The server and the other connection carry on.
	send(t, good, wstest.Frame{Op: ws.OpText, Payload: []byte("still here")})
	if got, err := good.ReadText(waitShort); err != nil || got != "still here" {
		t.Fatalf("echo %q %v", got, err)
	}
	waitOpen(t, ts, 1)
}

// TestOnCloseOnce closes connections every way at once; OnClose must run
// exactly once each (checked in startServer's Cleanup) and Open must return
// to zero.
func TestOnCloseOnce(t *testing.T) {
	ts := startServer(t, Config{SendQueue: 2, SlowPolicy: CloseSlow}, nil)
	const n = 20
	var recs []*connRec
	var cs []*wstest.Client
	for range n {
		c, rec := ts.dialRec(t)
		cs, recs = append(cs, c), append(recs, rec)
	}
	for i := range n {
		go recs[i].conn.CloseWith(1000, "")
		go recs[i].conn.Close()
		go func() {
			for range 5 {
				recs[i].conn.Send(textFrame("x"))
			}
		}()
		go func() {
			_ = cs[i].Write(wstest.Frame{Op: ws.OpClose, Payload: closePayload(1000, "")})
			cs[i].Close()
		}()
	}
	for _, rec := range recs {
		waitClosed(t, rec)
	}
	waitOpen(t, ts, 0)
}

// TestCloseTimeout: after the server's close, a peer that neither answers nor
// hangs up is dropped after CloseTimeout.
func TestCloseTimeout(t *testing.T) {
	ts := startServer(t, Config{CloseTimeout: 300 * time.Millisecond, SweepInterval: 50 * time.Millisecond}, nil)
	c, rec := ts.dialRec(t)
	if !rec.conn.CloseWith(4001, "going") {
		t.Fatal("CloseWith on an open connection = false, want true (it began the close)")
	}
	expectClose(t, c, 4001, "going")
	expectEOF(t, c) // the server half-closed; the client stays silent
	var ce *CloseError
	if cause := waitClosed(t, rec); !errors.As(cause, &ce) || ce.Code != 4001 || ce.Remote {
		t.Fatalf("OnClose cause %v, want the server's unanswered close 4001", cause)
	}
	waitOpen(t, ts, 0)
	// A second CloseWith is a no-op.
	if rec.conn.CloseWith(4002, "again") {
		t.Fatal("a second CloseWith = true")
	}
	if got := ts.srv.Stats().CloseSent(closeSlot(4001)); got != 1 {
		t.Fatalf("CloseSent(other) = %d, want 1", got)
	}
}
