package wsconn

import (
	"errors"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/netpoll"
)

// One owner per connection. Every Handler callback for a connection
// (Accept, OnRefused, OnMessage and OnClose) runs on the connection's
// dispatch slot: on the one worker dispatch runs for it, never two at once.
// Whoever else ends a connection (its writer on a write error, the sweeper
// on a timeout, Send's slow-consumer policy, Shutdown) only calls end, which
// records the cause, takes the socket out of the poller, closes the out
// queue and asks the poller to dispatch the connection; the worker that then
// runs sees the cause and tears down. So teardown runs exactly once, on the
// slot, and nothing else ever touches the read side or calls OnClose.

// endNote is the cause of a connection's end, recorded once.
type endNote struct{ err error }

// connTask is a Conn as dispatch and netpoll see it. The conversion keeps
// Slot, Serve, Abort and HandleEvent off Conn's method set: a handler that
// gets a *Conn cannot schedule or serve it.
type connTask Conn

var (
	_ dispatch.Task   = (*connTask)(nil)
	_ netpoll.Handler = (*connTask)(nil)
)

// Slot implements dispatch.Task.
func (t *connTask) Slot() *dispatch.Slot { return &t.slot }

// HandleEvent implements netpoll.Handler on the poller goroutine: a
// writable socket wakes the writer goroutine; anything else (readable,
// hang-up, end's trigger) hands the connection to its worker.
func (t *connTask) HandleEvent(fd int, ev netpoll.Event) {
	c := (*Conn)(t)
	if ev&netpoll.EventWrite != 0 {
		c.w.writable()
		return
	}
	if err := c.srv.disp.Dispatch(t); err != nil {
		// Only once the pool is closed, at the very end of Shutdown.
		c.end(err)
	}
}

// Serve implements dispatch.Task. It runs on c's worker: it tears down a
// connection that was ended, or reads what the socket has, handles complete
// frames (or the upgrade request) and re-arms the socket, never waiting
// for more bytes.
func (t *connTask) Serve() {
	c := (*Conn)(t)
	if c.state.Load() == stateClosed {
		return // a late event
	}
	c.armed = false
	if c.ending.Load() == nil {
		c.serve()
	}
	if c.ending.Load() == nil && !c.armed {
		c.arm()
	}
	if c.ending.Load() != nil {
		c.teardown()
	}
}

// arm asks the poller for the socket's next event: the first time it adds
// the socket (armed), later it re-arms it. Worker only.
//
// An end from another goroutine may run its poller Remove before the first
// Add; looking at ending again after the Add covers it: either that end's
// Remove comes after the Add, or this check sees the end and removes.
func (c *Conn) arm() {
	c.armed = true
	if c.watched {
		if err := c.poll.Rearm(int(c.fd)); err != nil && !errors.Is(err, netpoll.ErrNotRegistered) {
			c.end(err)
		}
		return
	}
	if err := c.poll.Add(int(c.fd), (*connTask)(c)); err != nil {
		c.end(err)
		return
	}
	c.watched = true
	if c.ending.Load() != nil {
		_ = c.poll.Remove(int(c.fd))
	}
}

// Abort implements dispatch.Task: a panic while serving is counted, logged
// and ends only this connection.
func (t *connTask) Abort(err error) {
	c := (*Conn)(t)
	c.srv.stats.Panics.Add(1) // before the close can be seen
	c.srv.logPanic(c, err)
	c.end(err)
}

// serve does one pass of reading for the connection's state. Worker only.
func (c *Conn) serve() {
	switch c.state.Load() {
	case stateHandshake:
		c.serveHandshake()
	case stateOpen:
		c.serveFrames()
	case stateClosing:
		if c.opened {
			c.serveFrames() // still looking for the peer's close frame
		} else {
			c.discardInput() // a refused upgrade: the rest is not ours to parse
		}
	}
}

// end asks for the connection's teardown and reports whether this call was
// the first. Safe from any goroutine and under any lock (it is how Send
// closes a slow consumer under a hub topic lock): it never blocks and
// never runs a Handler callback. The worker it dispatches tears down.
func (c *Conn) end(cause error) bool {
	if !c.ending.CompareAndSwap(nil, &endNote{err: cause}) {
		return false
	}
	_ = c.poll.Remove(int(c.fd)) // no more socket events
	c.w.close()                  // the writer stops; what was queued is counted lost
	if c.poll.Trigger(int(c.fd), (*connTask)(c)) != nil {
		// The pollers are closed: Shutdown's last step, after its grace.
		_ = c.srv.disp.Dispatch((*connTask)(c))
	}
	return true
}

// teardown ends the connection: it closes the socket, gives back the read
// buffers, calls OnClose and then leaves the registry (so Shutdown returns
// only after every OnClose). Worker only, once.
func (c *Conn) teardown() {
	c.state.Store(stateClosed)
	cause := c.ending.Load().err
	// A close handshake that was under way says more than the EOF (or
	// timeout) that ended it.
	if ce := c.closeCause.Load(); ce != nil && (cause == nil || errors.Is(cause, errEOF) || errors.Is(cause, ErrClosed)) {
		cause = ce
	}
	c.fdClose()
	c.releaseReadSide()
	defer c.srv.unregister(c)
	c.srv.handler.OnClose(c, cause)
}

// releaseReadSide gives the read buffers back. Worker only.
func (c *Conn) releaseReadSide() {
	bpool.Put(c.rbuf)
	bpool.Put(c.msg)
	c.rbuf, c.msg, c.msgOp = nil, nil, 0
}

// writeFailed implements socket: a write error or timeout ends the
// connection.
func (c *Conn) writeFailed(err error) { c.end(err) }

// wroteFinal implements socket. After the final frame it half-closes the
// socket so that the peer sees our close, and leaves the read side waiting
// up to CloseTimeout for the peer's answer.
func (c *Conn) wroteFinal() {
	c.setCloseDeadline(c.srv.cfg.CloseTimeout)
	if err := c.shutdownWrite(); err != nil {
		c.end(err)
	}
}
