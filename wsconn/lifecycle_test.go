package wsconn

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

// TestAcceptHeldPastHandshakeTimeout: the sweeper's handshake timeout fires
// while Accept still runs. The connection must not be torn down under
// Accept's feet (OnClose concurrent with or before the end of Accept left
// Accept's subscriptions behind forever): OnClose runs once, after Accept,
// on the same slot, and the client never sees a 101.
func TestAcceptHeldPastHandshakeTimeout(t *testing.T) {
	var (
		mu       sync.Mutex
		order    []string
		subs     = map[*Conn]bool{} // what Accept "subscribed"
		inAccept = make(chan *Conn, 1)
		release  = make(chan struct{})
	)
	h := newTestHandler()
	h.accept = func(c *Conn, r *Request) error {
		inAccept <- c
		<-release
		mu.Lock()
		defer mu.Unlock()
		order = append(order, "accept")
		subs[c] = true
		return nil
	}
	closes := make(chan struct{}, 1)
	h.onClose = func(c *Conn) {
		mu.Lock()
		order = append(order, "close")
		delete(subs, c)
		mu.Unlock()
		closes <- struct{}{}
	}
	ts := startServer(t, Config{HandshakeTimeout: 100 * time.Millisecond, SweepInterval: 10 * time.Millisecond}, h)
	nc := ts.rawConn(t)
	if _, err := nc.Write(upgradeRequest("/ws")); err != nil {
		t.Fatal(err)
	}
	c := <-inAccept
	// Hold Accept until the sweeper has ended the connection.
	testutil.CheckFor(t, waitShort, pollEvery, func() error {
		if c.ending.Load() == nil {
			return errors.New("the handshake timeout has not fired yet")
		}
		return nil
	})
	close(release)
	select {
	case <-closes:
	case <-time.After(waitLong):
		t.Fatal("OnClose not called")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "accept" || order[1] != "close" {
		t.Fatalf("callbacks %v, want [accept close]", order)
	}
	if len(subs) != 0 {
		t.Fatalf("%d subscriptions left behind", len(subs))
	}
	nc.SetReadDeadline(time.Now().Add(waitShort))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || !isEnded(err) {
		t.Fatalf("read %d bytes, %v: want EOF without a 101", n, err)
	}
	// The sweeper counts the timeout right after its end became visible
	// (which let this test go on): wait for the count rather than race it.
	waitStat(t, "HandshakeTimeouts", &ts.srv.Stats().HandshakeTimeouts, 1)
	waitOpen(t, ts, 0)
}

// TestAcceptedDuringShutdownIsNotLeaked: a socket accepted just as Shutdown
// begins, registered after the drain looked at the registry, must still be
// closed, and Shutdown must not wait for it until its context ends.
func TestAcceptedDuringShutdownIsNotLeaked(t *testing.T) {
	accepted, drained := make(chan struct{}), make(chan struct{})
	// Hold the accepted socket until the drain is over; a Shutdown that
	// waits for its accept loops first never drains meanwhile, so the
	// hook gives up after a while.
	testHookAccepted = func() {
		close(accepted)
		select {
		case <-drained:
		case <-time.After(300 * time.Millisecond):
		}
	}
	testHookDrained = func() { close(drained) }
	t.Cleanup(func() { testHookAccepted, testHookDrained = nil, nil })
	h := newTestHandler()
	srv, err := NewServer(Config{}, ServerOptions{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	<-accepted
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v: it waited for a connection it never closed", err)
	}
	if err := <-serveErr; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if n := srv.Stats().Open.Load(); n != 0 {
		t.Fatalf("%d connections left open", n)
	}
	nc.SetReadDeadline(time.Now().Add(waitShort))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || !isEnded(err) {
		t.Fatalf("read %d bytes, %v: want the socket closed", n, err)
	}
}

// TestReadTimeoutTrickle: a client that trickles a declared message a byte
// at a time keeps the connection "active" (idle never fires) but must still
// complete the message within ReadTimeout of its first byte: 1008.
func TestReadTimeoutTrickle(t *testing.T) {
	tests := []struct {
		name   string
		frames []wstest.Frame // the message, trickled byte by byte
	}{
		{"one_frame", []wstest.Frame{{Op: ws.OpText, Payload: make([]byte, 200)}}},
		{"fragments", []wstest.Frame{
			{Op: ws.OpText, Payload: []byte("a"), NotFin: true},
			{Op: ws.OpContinuation, Payload: make([]byte, 200)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{ReadTimeout: 300 * time.Millisecond, SweepInterval: 10 * time.Millisecond}, nil)
			c, rec := ts.dialRec(t)
			var wire []byte
			for _, f := range tt.frames {
				wire = append(wire, f.Encode()...)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // a byte every 20 ms: never idle, never complete in time
				defer close(done)
				for _, b := range wire[:len(wire)-1] {
					if _, err := c.Conn.Write([]byte{b}); err != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			defer func() { close(stop); <-done }()
			expectClose(t, c, ws.StatusPolicyViolation, "read timeout")
			send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1008, "")})
			if cause := waitClosed(t, rec); !errors.Is(cause, ErrReadTimeout) {
				t.Fatalf("cause %v, want ErrReadTimeout", cause)
			}
			expectNoMsg(t, rec)
		})
	}
}

// TestReadTimeoutNotForCompleteMessages: messages that complete in time, in
// parts, keep the connection open long past ReadTimeout.
func TestReadTimeoutNotForCompleteMessages(t *testing.T) {
	ts := startServer(t, Config{ReadTimeout: 200 * time.Millisecond, SweepInterval: 10 * time.Millisecond}, nil)
	c, rec := ts.dialRec(t)
	start := time.Now()
	for i := 0; time.Since(start) < 600*time.Millisecond; i++ {
		wire := wstest.Frame{Op: ws.OpText, Payload: []byte("hello")}.Encode()
		write(t, c, wire[:3])
		time.Sleep(20 * time.Millisecond)
		write(t, c, wire[3:])
		if m := expectMsg(t, rec); string(m.Payload) != "hello" {
			t.Fatalf("message %d = %v", i, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	barrier(t, c)
}

// TestFrameSyncAfterServerClose: when the handler closes the connection in
// OnMessage, the frames after that message (already buffered, one of them
// split across reads) are still parsed in sync, so the peer's close answer
// is found and the close cause is the handler's close, not a 1002 from
// reading mid-frame.
func TestFrameSyncAfterServerClose(t *testing.T) {
	h := newTestHandler()
	h.onMessage = func(c *Conn, op ws.OpCode, p []byte) {
		if string(p) == "close-me" {
			c.CloseWith(4000, "bye")
		}
	}
	ts := startServer(t, Config{}, h)
	c, rec := ts.dialRec(t)
	// Payload bytes that, read as a frame header, set the reserved bits:
	// a reader that lost sync fails with 1002.
	junk := make([]byte, 300)
	for i := range junk {
		junk[i] = 0x70
	}
	next := wstest.Frame{Op: ws.OpText, Payload: junk, Unmasked: false}.Encode()
	first := append(wstest.Frame{Op: ws.OpText, Payload: []byte("close-me")}.Encode(), next[:150]...)
	write(t, c, first)
	expectClose(t, c, 4000, "bye")
	rest := append(next[150:], wstest.Frame{Op: ws.OpClose, Payload: closePayload(4000, "")}.Encode()...)
	write(t, c, rest)
	cause := waitClosed(t, rec)
	var ce *CloseError
	if !errors.As(cause, &ce) || ce.Code != 4000 {
		t.Fatalf("cause %v, want the 4000 close handshake", cause)
	}
	if n := ts.srv.Stats().CloseSent(closeSlot(ws.StatusProtocolError)); n != 0 {
		t.Fatalf("%d 1002 closes sent", n)
	}
}

// TestWriteTimeoutIsPerProgress: a client that reads slowly but steadily
// takes far longer than WriteTimeout to receive a large batch, and must get
// all of it: the timeout bounds a write that makes no progress, not the
// batch.
func TestWriteTimeoutIsPerProgress(t *testing.T) {
	const frames, size = 64, 32 << 10 // 2 MiB, read at ~1 MiB/s
	ts := startServer(t, Config{WriteTimeout: 300 * time.Millisecond, SendQueue: frames}, nil)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(upgradeRequest("/ws")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(nc, 1)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	rec := ts.h.lookup(t, nc)
	// A small server send buffer too, so that the batch has to wait for
	// the client many times.
	ts.srv.Range(func(c *Conn) bool {
		if c == rec.conn {
			_ = syscall.SetsockoptInt(int(c.fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10)
		}
		return true
	})
	for i := range frames {
		if !rec.conn.Send(dataFrame(uint64(i), size)) {
			t.Fatalf("Send %d refused", i)
		}
	}
	buf := make([]byte, 32<<10)
	var got int
	start := time.Now()
	for got < frames*(size+4) {
		nc.SetReadDeadline(time.Now().Add(waitShort))
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes in %v: %v", got, frames*(size+4), time.Since(start), err)
		}
		got += n
		time.Sleep(25 * time.Millisecond)
	}
	if el := time.Since(start); el < 3*ts.srv.cfg.WriteTimeout {
		t.Logf("the batch took only %v: the test did not exercise slow reading", el)
	}
	if n := ts.srv.Stats().WriteErrors.Load(); n != 0 {
		t.Fatalf("%d write errors", n)
	}
}

// TestSlowClosedCountedOnce: publishers racing into one full queue under
// the close policy close the connection once and count it once. The queue
// is filled before the upgrade completes (Accept subscribed it; no writer
// may run yet), so it stays full while they race.
func TestSlowClosedCountedOnce(t *testing.T) {
	const conns, senders, each = 5, 8, 100
	h := newTestHandler()
	var refused atomic.Int64
	h.accept = func(c *Conn, r *Request) error {
		var wg sync.WaitGroup
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if !c.Send(dataFrame(1, 64)) {
						refused.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return nil
	}
	ts := startServer(t, Config{SendQueue: 4, SlowPolicy: CloseSlow}, h)
	for range conns {
		nc := ts.rawConn(t)
		if _, err := nc.Write(upgradeRequest("/ws")); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ts.h.lookup(t, nc))
	}
	if n := refused.Load(); n < conns*(senders*each-4) {
		t.Fatalf("%d Sends refused, want at least %d: the queues never filled", n, conns*(senders*each-4))
	}
	// Counted right after the winning end (OnClose may come first): wait
	// for the count, then check no second count came for any connection.
	st := ts.srv.Stats()
	waitStat(t, "SlowClosed", &st.SlowClosed, conns)
	if n := st.SlowClosed.Load(); n != conns {
		t.Fatalf("SlowClosed = %d for %d slow connections", n, conns)
	}
}

// TestPingsWrittenBySweeper: idle connections get their keepalives written
// by the sweeper itself: every ping arrives, and none needed a writer
// goroutine or a queue entry.
func TestPingsWrittenBySweeper(t *testing.T) {
	const conns, pings = 20, 3
	ts := startServer(t, Config{PingInterval: 50 * time.Millisecond, SweepInterval: 10 * time.Millisecond, IdleTimeout: -1}, nil)
	var cs []*wstest.Client
	for range conns {
		cs = append(cs, ts.dial(t))
	}
	for i, c := range cs {
		for n := 0; n < pings; {
			h, _, err := c.Read(waitShort)
			if err != nil {
				t.Fatalf("client %d: %v after %d pings", i, err, n)
			}
			if h.OpCode == ws.OpPing {
				n++
			}
		}
	}
	st := ts.srv.Stats()
	if n := st.PingsDirect.Load(); n < conns*pings {
		t.Fatalf("%d pings written by the sweeper, want at least %d (all of them: the connections were idle)", n, conns*pings)
	}
}

// TestPingsCarriedByDeliveries: a ping owed by an idle connection goes out
// in the write of the next delivery, not by a system call of its own, and
// the client gets both. The keepalive round is run by hand (the sweeper's
// pings are off) so that the delivery comes between the ping being owed
// and the next sweep.
func TestPingsCarriedByDeliveries(t *testing.T) {
	const conns = 5
	ts := startServer(t, Config{PingInterval: -1, IdleTimeout: -1}, nil)
	for i := range conns {
		c, rec := ts.dialRec(t)
		waitWriteIdle(t, rec.conn)
		if owes := rec.conn.ping(time.Now().UnixNano()); !owes {
			t.Fatalf("client %d: an idle connection's ping was not owed", i)
		}
		rec.conn.Send(textFrame("tick"))
		var got []frameOut
		for len(got) < 2 {
			h, p, err := c.Read(waitShort)
			if err != nil {
				t.Fatalf("client %d: %v after %v", i, err, got)
			}
			got = append(got, frameOut{h.OpCode, p})
		}
		if got[0].Op != ws.OpText || got[1].Op != ws.OpPing {
			t.Fatalf("client %d got %v, want the delivery and then the ping it carried", i, got)
		}
	}
	st := ts.srv.Stats()
	if carried, direct, all := st.PingsCarried.Load(), st.PingsDirect.Load(), st.Pings.Load(); carried != conns || direct != 0 || all != conns {
		t.Fatalf("pings: %d carried, %d direct, %d in all; want %d carried, 0 direct", carried, direct, all, conns)
	}
}

// TestDeliveriesStandInForPings: a connection that is written deliveries
// is not pinged and not closed as idle, though its client sends nothing
// for three idle timeouts, and its socket gets TCP_USER_TIMEOUT (so that
// the kernel finds a dead peer); once the deliveries stop, it is pinged
// and, never answering, closed as idle.
func TestDeliveriesStandInForPings(t *testing.T) {
	const idle = 400 * time.Millisecond
	ts := startServer(t, Config{PingInterval: 100 * time.Millisecond, IdleTimeout: idle, SweepInterval: 20 * time.Millisecond}, nil)
	c, rec := ts.dialRec(t)
	for end := time.Now().Add(3 * idle); time.Now().Before(end); {
		rec.conn.Send(textFrame("tick"))
		h, p, err := c.Read(waitShort)
		if err != nil {
			t.Fatalf("while deliveries flowed: %v", err)
		}
		if h.OpCode != ws.OpText {
			t.Fatalf("while deliveries flowed the client got %v, want only deliveries", frameOut{h.OpCode, p})
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := ts.srv.Stats().PingsSkipped.Load(); n == 0 {
		t.Fatal("PingsSkipped = 0 after three idle timeouts of deliveries")
	}
	if got := sockoptInt(t, rec.conn, unix.TCP_USER_TIMEOUT); got != int(idle.Milliseconds()) {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms after rounds without pings, want %d", got, idle.Milliseconds())
	}
	h, p, err := c.Read(waitShort)
	if err != nil || h.OpCode != ws.OpPing {
		t.Fatalf("after the deliveries stopped: %v, %v; want a ping", frameOut{h.OpCode, p}, err)
	}
	expectClose(t, c, ws.StatusGoingAway, "idle timeout")
	send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1001, "")})
	waitClosed(t, rec)
}

// TestPollerReleasedAfterEnd: a new connection is served straight from the
// accept loop and only watched by the poller once it has to wait
// (Conn.arm). However it ends — before, during or after that first wait —
// the poller holds nothing of it afterwards (a leaked registration would
// refuse the next socket that gets the same descriptor number).
func TestPollerReleasedAfterEnd(t *testing.T) {
	ts := startServer(t, Config{HandshakeTimeout: 300 * time.Millisecond, SweepInterval: 50 * time.Millisecond}, nil)
	c := ts.dial(t) // Serve has registered its listener once a client got in
	c.Close()
	waitClosed(t, ts.h.lookup(t, c.Conn))
	base := ts.srv.polls.Len() // the listener
	if base == 0 {
		t.Fatal("the listener is not registered")
	}
	req := upgradeRequest("/ws")
	tests := []struct {
		name string
		run  func(t *testing.T, nc net.Conn)
	}{
		{"request at once, client leaves", func(t *testing.T, nc net.Conn) {
			mustWrite(t, nc, req)
			want101(t, nc)
			nc.Close()
		}},
		{"request in two parts", func(t *testing.T, nc net.Conn) {
			mustWrite(t, nc, req[:20])
			time.Sleep(20 * time.Millisecond) // the first read finds half a request
			mustWrite(t, nc, req[20:])
			want101(t, nc)
			nc.Close()
		}},
		{"nothing sent, client leaves", func(t *testing.T, nc net.Conn) { nc.Close() }},
		{"nothing sent, handshake timeout", func(t *testing.T, nc net.Conn) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nc := ts.rawConn(t)
			tc.run(t, nc)
			waitClosed(t, ts.h.lookup(t, nc))
			if n := ts.srv.polls.Len(); n != base {
				t.Fatalf("poller holds %d descriptors after the end, want %d", n, base)
			}
		})
	}
}

func mustWrite(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

func want101(t *testing.T, nc net.Conn) {
	t.Helper()
	if resp, _, _ := readResponse(t, nc); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
}
