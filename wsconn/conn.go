package wsconn

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wsframe"
	"github.com/wspush/wspush/netpoll"
)

// Connection states, in the only order they are entered.
const (
	stateHandshake int32 = iota // reading the upgrade request
	stateOpen                   // upgraded: frames flow both ways
	stateClosing                // a close frame or refusal is queued or sent
	stateClosed                 // torn down: socket closed, OnClose called
)

// Conn is one client connection. It is created by the Server; handlers get
// it in their callbacks. Send, SendReply, Close, CloseWith and Pending are
// safe from any goroutine; see the package comment for who runs what.
type Conn struct {
	srv    *Server         // immutable
	poll   *netpoll.Poller // immutable once registered
	fd     int32           // immutable; the socket, closed via fdClose
	fdRefs atomic.Int32    // users of fd, plus fdClosing; see rawio.go

	slot  dispatch.Slot // owned by dispatch: the one worker that runs for c
	state atomic.Int32  // stateHandshake … stateClosed; only moves forward
	// ending is set once, by the first end: the cause of the end. The
	// worker that sees it tears the connection down (lifecycle.go).
	ending atomic.Pointer[endNote]
	// closeCause is the close handshake under way (ours or the peer's),
	// handed to OnClose when the connection ends. Set once.
	closeCause atomic.Pointer[CloseError]

	// deadline is the unix-nano time the sweeper acts on. Positive: the
	// handshake timeout while handshaking, or while open the read timeout
	// of a message whose first bytes arrived. Negative: minus the close
	// timeout, stored by whoever starts a close just before the state says
	// closing (so a negative value marks a close in progress). Zero: none
	// (open, nothing pending; or handshaking and being upgraded right now).
	// While open the worker changes a non-negative value only with
	// CompareAndSwap, so a close's deadline always wins.
	deadline atomic.Int64
	// lastSeen is when the peer last showed it is alive, in unix nanos:
	// when bytes were last read (written by the worker), or the keepalive
	// round that found deliveries written since the one before (written by
	// the sweeper, see Conn.ping). Read by the sweeper.
	lastSeen atomic.Int64

	// Worker-only: touched only on c's dispatch slot (inside Serve).
	rbuf *[]byte // bytes read but not yet parsed (partial frame or request)
	msg  *[]byte // payload of a fragmented message being reassembled
	// remote is the client's address: the peer's, replaced on the worker
	// by a PROXY protocol header's before Handler.Accept (the first time the
	// Conn is seen outside this package); read-only from then on.
	remote peerAddr
	msgOp  ws.OpCode // opcode of the message in msg; 0 when none
	// msgDeflate: the message in msg is compressed (permessage-deflate).
	msgDeflate bool
	// failed is set when the connection was failed for a protocol error:
	// from then on input is discarded, never parsed.
	failed bool
	// proxyPending is set at accept for a peer in Config.ProxyProtocol and
	// cleared once its PROXY header is read.
	proxyPending bool
	// opened is set when the upgrade succeeded: frames flow.
	opened bool
	// admitted is set while c holds one of the server's MaxConns places;
	// teardown gives it back.
	admitted bool
	// watched is set once the poller watches the socket. A new connection
	// is first served straight from the accept loop (its upgrade request is
	// usually there already) and added to the poller, armed, when that first
	// read leaves it waiting for more (lifecycle.go, arm).
	watched bool
	// armed is set once this pass of the worker asked the poller for the
	// next event (an upgrade does it before writing its 101); Serve clears
	// it before serving and arms at the end only when it is still clear.
	armed bool
	// shardIdx is the position in the server's registry shard; guarded by
	// that shard's mutex. (Placed here, with the bytes above, the Conn
	// fits the 176-byte size class: see TestConnSize.)
	shardIdx int32

	w writer // the write side: out queue and writer goroutine (writer.go)

	value atomic.Value // the handler's per-connection value
}

// SetValue stores the handler's per-connection value.
func (c *Conn) SetValue(v any) { c.value.Store(v) }

// Value returns what SetValue stored, or nil.
func (c *Conn) Value() any { return c.value.Load() }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote.addrPort() }

// peerAddr is a client address in 18 bytes (a netip.AddrPort takes 32): the
// address in its 16-byte form and the port. An IPv4 address is kept mapped
// and comes back as IPv4; an IPv6 zone is not kept (accepted TCP peers
// never need it). The zero value is no address.
type peerAddr struct {
	ip   [16]byte
	port uint16
}

func packAddr(a netip.AddrPort) peerAddr {
	if !a.IsValid() {
		return peerAddr{}
	}
	return peerAddr{ip: a.Addr().As16(), port: a.Port()}
}

func (p peerAddr) addrPort() netip.AddrPort {
	if p == (peerAddr{}) {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom16(p.ip).Unmap(), p.port)
}

// Send queues a data frame for delivery. It owns one reference to f in every
// case and never blocks: when the queue is full it applies the SlowPolicy
// (a CloseSlow close is started here and finished on the connection's slot).
// It reports whether f was queued. Send implements hub.Subscriber. On a
// connection that negotiated permessage-deflate it first gives f its
// compressed encoding, once for all such recipients.
func (c *Conn) Send(f *bpool.Frame) bool {
	if c.w.deflate {
		c.srv.prepareDeflate(f)
	}
	return c.afterPush(c.w.push(f, kindData), true)
}

// SendReply queues an application reply (a command ack or error) as a text
// frame with payload p. Replies keep their order with deliveries and are never
// dropped by the slow policy.
func (c *Conn) SendReply(p []byte) bool {
	f := wsframe.NewText(len(p))
	f.B = append(f.B, p...)
	return c.sendControl(f)
}

// SendFrames queues f, one or more complete server frames back to back
// (recovered messages, say), as one entry that keeps its order with
// deliveries and replies and is never dropped by the slow policy. It owns
// one reference to f.
func (c *Conn) SendFrames(f *bpool.Frame) bool { return c.sendControl(f) }

// sendControl queues a frame that is never dropped (pong, ping, reply). It
// owns one reference to f.
func (c *Conn) sendControl(f *bpool.Frame) bool { return c.afterPush(c.w.push(f, kindControl), false) }

// afterPush acts on what a push did: hand the claimed write side to a
// flusher (flush.go), or close a slow consumer. A data frame inside a
// batch (Server.BeginBatch) waits for the batch's end; anything else wakes
// the flusher now. It reports whether the frame was queued.
func (c *Conn) afterPush(r pushResult, data bool) bool {
	switch r {
	case pushed, pushedStart:
		if r.started() {
			c.handOff(!data || c.srv.batches.Load() == 0)
		}
		return true
	case pushSlow:
		c.closeWith(slowConsumerClose, true)
	}
	return false
}

// handOff passes the write side that a push, open or claim took (so there
// is never a second writer on the socket) to whoever writes: a flusher on
// demand (woken now when ring, else at the batch's end), the connection's
// own goroutine when writers are persistent.
func (c *Conn) handOff(ring bool) {
	if c.srv.qpol.persistent {
		c.srv.stats.Writers.Add(1)
		go c.w.run(c, nil, nil)
		return
	}
	c.srv.list(c, ring)
}

// Pending reports how many frames are queued for the connection.
func (c *Conn) Pending() int { return c.w.len() }

// Close closes the connection with 1000, after what is queued.
func (c *Conn) Close() { c.CloseWith(ws.StatusNormalClosure, "") }

// CloseWith queues a close frame with code and reason after what is already
// queued; the writer sends it and the connection ends once the peer answers
// or CloseTimeout passes. It reports whether this call began the close: it
// is a no-op, returning false, once closing has begun.
func (c *Conn) CloseWith(code ws.StatusCode, reason string) bool {
	return c.closeWith(&CloseError{Code: code, Reason: reason}, false)
}

// slowConsumerClose is the close of a connection that fell too far behind;
// shared, never modified.
var slowConsumerClose = &CloseError{Code: ws.StatusPolicyViolation, Reason: "slow consumer", Err: ErrSlowConsumer}

// closeWith starts the closing handshake with ce's code and reason, and
// records ce as the close cause OnClose will get. discard drops the queued
// data first (the slow-consumer close). Before the upgrade there is no close
// frame to send: it ends the connection. Safe from any goroutine, also
// inside Send under a hub topic lock: it never tears down itself. It
// reports whether this call began the close.
func (c *Conn) closeWith(ce *CloseError, discard bool) bool {
	for {
		s := c.state.Load()
		if s >= stateClosing {
			return false
		}
		if s == stateHandshake {
			ended := c.end(ce)
			if ended {
				c.srv.stats.countClose(ce.Err)
			}
			return ended
		}
		c.setCloseDeadline(c.srv.cfg.WriteTimeout + c.srv.cfg.CloseTimeout)
		if c.state.CompareAndSwap(s, stateClosing) {
			break
		}
	}
	c.srv.stats.countClose(ce.Err) // once: only the state's winner gets here
	c.closeCause.CompareAndSwap(nil, ce)
	code, reason := ce.Code, ce.Reason
	if ce.Remote {
		reason = "" // an echo carries the peer's code only
	}
	c.srv.stats.closeSent[closeSlot(code)].Add(1)
	switch r := c.w.pushFinal(newCloseFrame(code, reason), discard); r {
	case refused: // nothing more can be written
		c.end(ce)
	case pushedStart:
		c.handOff(true)
	}
	return true
}

// setCloseDeadline gives a close in progress d to finish (see deadline).
func (c *Conn) setCloseDeadline(d time.Duration) {
	c.deadline.Store(-time.Now().Add(d).UnixNano())
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
