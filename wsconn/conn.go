package wsconn

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/netpoll"
)

// Connection states, in the only order they are entered.
const (
	stateHandshake int32 = iota // reading the upgrade request
	stateOpen                   // upgraded: frames flow both ways
	stateClosing                // a close frame or refusal is queued or sent
	stateClosed                 // torn down: socket closed, queue emptied
)

// Conn is one client connection. It is created by the Server; handlers get
// it in their callbacks. Send, Close and CloseWith are safe from any
// goroutine.
type Conn struct {
	srv  *Server         // immutable
	poll *netpoll.Poller // immutable once registered
	// remote is the client's address: the peer's, replaced on the worker
	// by a PROXY protocol header's before Handler.Accept (the first time the
	// Conn is seen outside this package); read-only from then on.
	remote netip.AddrPort
	fd     int32        // immutable; the socket, closed via fdClose
	fdRefs atomic.Int32 // users of fd, plus fdClosing; see rawio.go

	slot  dispatch.Slot // owned by dispatch
	state atomic.Int32  // stateHandshake … stateClosed; only moves forward
	// upgraded is true while the connection holds one of the server's
	// MaxConns places: set at admission, cleared (with the count) by whoever
	// swaps it back to false first.
	upgraded atomic.Bool
	// closeCause is the close handshake under way (ours or the peer's),
	// handed to OnClose when the connection ends. Set once.
	closeCause atomic.Pointer[CloseError]
	// opened is set when the upgrade succeeded: frames flow. Never cleared.
	opened atomic.Bool

	// deadline is the unix-nano time the sweeper acts on: the handshake
	// timeout while handshaking, the close timeout while closing. Written by
	// whoever changes state, read by the sweeper.
	deadline atomic.Int64
	// lastRead is when bytes were last read, in unix nanos. Written by the
	// worker, read by the sweeper.
	lastRead atomic.Int64
	// shardIdx is the position in the server's registry shard; guarded by
	// that shard's mutex.
	shardIdx int32

	// Read side: touched only by the worker inside Serve (dispatch makes
	// that one goroutine at a time).
	rbuf  *[]byte   // bytes read but not yet parsed (partial frame or request)
	msg   *[]byte   // payload of a fragmented message being reassembled
	msgOp ws.OpCode // opcode of the message in msg; 0 when none
	// failed is set when the connection was failed for a protocol error:
	// from then on input is discarded, never parsed.
	failed bool
	// proxyPending is set at accept for a peer in Config.ProxyProtocol and
	// cleared once its PROXY header is read.
	proxyPending bool

	q outQueue // the write side's queue; see queue.go

	value atomic.Value // the handler's per-connection value
}

// SetValue stores the handler's per-connection value.
func (c *Conn) SetValue(v any) { c.value.Store(v) }

// Value returns what SetValue stored, or nil.
func (c *Conn) Value() any { return c.value.Load() }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Slot implements dispatch.Task.
func (c *Conn) Slot() *dispatch.Slot { return &c.slot }

// HandleEvent implements netpoll.Handler: it hands the connection to a
// worker. It runs on the poller goroutine.
func (c *Conn) HandleEvent(fd int, ev netpoll.Event) {
	if ev&netpoll.EventWrite != 0 {
		c.signalWriter()
		return
	}
	if err := c.srv.disp.Dispatch(c); err != nil {
		c.teardown(err)
	}
}

// Abort implements dispatch.Task: a panic while serving closes only this
// connection.
func (c *Conn) Abort(err error) {
	c.srv.cfgLogPanic(c, err)
	c.teardown(err)
}

// Serve implements dispatch.Task. It runs on a worker: it reads what the
// socket has, handles complete frames (or the upgrade request) and re-arms
// the socket, never waiting for more bytes.
func (c *Conn) Serve() {
	switch c.state.Load() {
	case stateHandshake:
		c.serveHandshake()
	case stateOpen:
		c.serveFrames()
	case stateClosing:
		if c.opened.Load() {
			c.serveFrames() // still looking for the peer's close frame
		} else {
			c.discardInput() // a refused upgrade: the rest is not ours to parse
		}
	}
	if c.state.Load() == stateClosed {
		c.releaseReadSide()
		return
	}
	if err := c.poll.Rearm(int(c.fd)); err != nil && !errors.Is(err, netpoll.ErrNotRegistered) {
		c.teardown(err)
	}
}

// releaseReadSide gives the read buffers back. Worker only.
func (c *Conn) releaseReadSide() {
	bpool.Put(c.rbuf)
	bpool.Put(c.msg)
	c.rbuf, c.msg, c.msgOp = nil, nil, 0
}

// Close closes the connection with 1000, after what is queued.
func (c *Conn) Close() { c.CloseWith(ws.StatusNormalClosure, "") }

// CloseWith queues a close frame with code and reason after what is already
// queued; the writer sends it and the connection ends once the peer answers
// or CloseTimeout passes. It is a no-op once closing has begun.
func (c *Conn) CloseWith(code ws.StatusCode, reason string) {
	c.closeWith(&CloseError{Code: code, Reason: reason}, false)
}

// closeWith starts the closing handshake with ce's code and reason, and
// records ce as the close cause OnClose will get. discard drops the queued
// data first (the slow-consumer close). It never tears down synchronously,
// so it is safe inside Send.
func (c *Conn) closeWith(ce *CloseError, discard bool) {
	code, reason := ce.Code, ce.Reason
	if ce.Remote {
		reason = "" // an echo carries the peer's code only
	}
	for {
		s := c.state.Load()
		if s >= stateClosing {
			return
		}
		if s == stateHandshake {
			// No WebSocket yet: there is no close frame to send. Tear down
			// on another goroutine: closeWith may run inside Send, under a
			// hub topic lock that OnClose needs.
			go c.teardown(ce)
			return
		}
		if c.state.CompareAndSwap(s, stateClosing) {
			break
		}
	}
	c.closeCause.CompareAndSwap(nil, ce)
	c.deadline.Store(time.Now().Add(c.srv.cfg.WriteTimeout + c.srv.cfg.CloseTimeout).UnixNano())
	f := newCloseFrame(code, reason)
	c.srv.stats.closeSent[closeSlot(code)].Add(1)
	if !c.pushFinal(f, discard) {
		// The queue is already finished: nothing more can be written. (On
		// another goroutine, for the same reason as above.)
		go c.teardown(ce)
	}
}

// teardown ends the connection exactly once: it unregisters and closes the
// socket, empties the queue and tells the handler. Safe from any goroutine.
func (c *Conn) teardown(cause error) {
	if c.state.Swap(stateClosed) == stateClosed {
		return
	}
	// A close handshake that was under way says more than the EOF (or
	// timeout) that ended it.
	if ce := c.closeCause.Load(); ce != nil && (cause == nil || errors.Is(cause, errEOF) || errors.Is(cause, ErrClosed)) {
		cause = ce
	}
	if c.poll != nil {
		_ = c.poll.Remove(int(c.fd))
	}
	c.fdClose()
	c.q.shutdown(c)
	c.srv.unregister(c)
	if c.slot.TryAcquire() {
		c.releaseReadSide()
		c.slot.ReleaseAcquired()
	}
	c.srv.handler.OnClose(c, cause)
}

// newCloseFrame encodes a close frame; code 0 means an empty body.
func newCloseFrame(code ws.StatusCode, reason string) *bpool.Frame {
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
	}
	n := 0
	if code != 0 {
		n = 2 + len(reason)
	}
	f := bpool.NewFrame(2 + n)
	f.B = append(f.B, 0x80|byte(ws.OpClose), byte(n))
	if code != 0 {
		f.B = append(f.B, byte(code>>8), byte(code))
		f.B = append(f.B, reason...)
	}
	return f
}

// newControlFrame encodes a ping or pong with payload p (at most 125 bytes).
func newControlFrame(op ws.OpCode, p []byte) *bpool.Frame {
	f := bpool.NewFrame(2 + len(p))
	f.B = append(f.B, 0x80|byte(op), byte(len(p)))
	f.B = append(f.B, p...)
	return f
}
