package wsconn

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/bpool"
)

// sweepLoop is the one timer for all connections: handshake, message-read
// and close deadlines, idle timeouts and pings. It never tears a connection
// down itself: it closes or ends it (lifecycle.go).
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	sched := newPingSchedule(&s.cfg, time.Now())
	// owed: idle connections whose ping of the last sweep waits for a
	// delivery to carry it; the next sweep writes those still owed.
	var buf, owed []*Conn
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			for _, c := range owed {
				if c.w.payPing() {
					c.writePing()
				}
			}
			clear(owed)
			owed = owed[:0]
			pings := sched.next(now)
			for i := range s.shards {
				sh := &s.shards[i]
				sh.mu.Lock()
				buf = append(buf[:0], sh.conns...)
				sh.mu.Unlock()
				for _, c := range buf {
					if s.sweepConn(c, now.UnixNano(), pings) {
						owed = append(owed, c)
					}
				}
			}
			clear(buf)
		}
	}
}

// pingSchedule spreads keepalives over the ping interval: a connection's
// phase (its descriptor modulo the sweeps per interval) says in which sweep
// of each interval it is pinged, so every sweep pings about 1/phases of the
// connections and their pongs come back as a steady trickle, not as one
// burst of every connection's pong per interval (19,000 pongs at once took
// ~130 ms of the server's two cores and delayed the broadcast that met
// them; at a million connections it would be a million every 25 s).
// Owned by the sweeper goroutine.
type pingSchedule struct {
	phases int64 // sweeps per ping interval, at least 1; 0: pings off
	sweep  time.Duration
	start  time.Time // sweep index 0
	last   int64     // the last sweep index whose phase was pinged
}

func newPingSchedule(cfg *Config, start time.Time) pingSchedule {
	if cfg.PingInterval <= 0 {
		return pingSchedule{}
	}
	// Rounded down, so that a connection is pinged at least every
	// PingInterval.
	phases := max(int64(cfg.PingInterval/cfg.SweepInterval), 1)
	return pingSchedule{phases: phases, sweep: cfg.SweepInterval, start: start}
}

// next returns the phases due at now: those of every sweep index since the
// last call, so that a sweep the ticker dropped (a slow sweep, a loaded
// host) delays its connections' pings instead of skipping them for an
// interval.
func (p *pingSchedule) next(now time.Time) pingWindow {
	if p.phases == 0 {
		return pingWindow{}
	}
	cur := int64(now.Sub(p.start) / p.sweep)
	if cur <= p.last {
		return pingWindow{}
	}
	w := pingWindow{phases: p.phases, from: (p.last + 1) % p.phases, n: min(cur-p.last, p.phases)}
	p.last = cur
	return w
}

// pingWindow is the phases one sweep pings: n of them from from on, modulo
// phases. The zero value pings nobody.
type pingWindow struct {
	phases, from, n int64
}

// has reports whether the connection on descriptor fd is in the window.
func (w pingWindow) has(fd int32) bool {
	if w.n == 0 {
		return false
	}
	return (int64(fd)%w.phases-w.from+w.phases)%w.phases < w.n
}

// pingFrame is shared by every ping; it is never pooled.
var pingFrame = bpool.StaticFrame(ws.CompiledPing)

// The sweeper's closes; shared, never modified.
var (
	idleClose = &CloseError{Code: ws.StatusGoingAway, Reason: "idle timeout", Err: ErrIdle}
	readClose = &CloseError{Code: ws.StatusPolicyViolation, Reason: "read timeout", Err: ErrReadTimeout}
)

// sweepConn acts on c's deadlines and, when c is in this sweep's ping
// window, on its keepalive. It reports whether c now owes a ping that the
// next sweep must write if no push carried it.
func (s *Server) sweepConn(c *Conn, now int64, pings pingWindow) (owes bool) {
	switch c.state.Load() {
	case stateHandshake:
		// 0: the worker is completing the upgrade right now; negative:
		// it is refusing it.
		if d := c.deadline.Load(); d > 0 && now > d && c.end(ErrHandshakeTimeout) {
			s.stats.HandshakeTimeouts.Add(1)
		}
	case stateClosing:
		// Not negative yet: the closer is about to store it.
		if d := c.deadline.Load(); d < 0 && now > -d {
			c.end(nil)
		}
	case stateOpen:
		if d := c.deadline.Load(); d > 0 && now > d && s.cfg.ReadTimeout > 0 {
			c.closeWith(readClose, false)
			return
		}
		silent := time.Duration(now - c.lastSeen.Load())
		if s.cfg.IdleTimeout > 0 && silent > s.cfg.IdleTimeout {
			c.closeWith(idleClose, false)
			return
		}
		if pings.has(c.fd) && s.cfg.pingDue(silent) {
			return c.ping(now)
		}
	}
	return false
}

// pingDue reports whether a connection silent this long gets the ping of
// this round: one that sent nothing for half an interval. Rounds are
// PingInterval apart, so a client whose pong answered the last round's
// ping within half an interval is pinged again in this one: an answering
// client gets a ping every interval, not every other one, even on a
// loaded host where pongs come back seconds late (with a slack of two
// sweeps, 500,000 connections on two cores were pinged every other round,
// every 50 s, and the 60 s idle timeout then closed those whose pong took
// longer than 10 s). A client that sent anything else lately needs no
// ping: its reads already prove it alive.
func (c *Config) pingDue(silent time.Duration) bool {
	return silent >= c.PingInterval/2
}

// ping is c's keepalive round (now is the sweep's time). A connection that
// had deliveries written since its last round is not pinged: the writes
// prove the peer alive as a pong would, so lastSeen moves to now and a
// stream of deliveries costs no ping, no pong and no read. What makes that
// sound is TCP_USER_TIMEOUT, set to IdleTimeout by the first such round (one
// setsockopt in a connection's life, and none for a connection that never
// gets a delivery): the kernel ends a connection whose written bytes stay
// unacknowledged that long, so a dead peer is found as soon as one that is
// pinged. A busy connection gets the ping queued behind what is pending. On
// an idle one it is only marked owed (it reports true): a frame pushed
// before the next sweep carries it in its own write, and that sweep writes
// it otherwise (writePing).
func (c *Conn) ping(now int64) (owes bool) {
	k := c.w.keepalive()
	if k == keepaliveFirst {
		c.setUserTimeout(c.srv.cfg.IdleTimeout)
	}
	if k == keepaliveFirst || k == keepaliveProven {
		c.lastSeen.Store(now)
		c.srv.stats.PingsSkipped.Add(1)
		return false
	}
	c.srv.stats.Pings.Add(1)
	if k == keepaliveOwed {
		return true
	}
	c.sendControl(pingFrame)
	return false
}

// writePing writes a keepalive that no push carried, on the write side
// payPing claimed: the 2 bytes right here, by the sweeper (one non-blocking
// write: no goroutine, no queue).
func (c *Conn) writePing() {
	n, err := c.writeRaw(ws.CompiledPing)
	var rest *bpool.Frame
	switch {
	case err == nil && n == len(ws.CompiledPing):
		c.srv.stats.PingsDirect.Add(1)
	case n > 0 || errors.Is(err, unix.EAGAIN):
		// A full socket: the writer goroutine sends the rest when it
		// drains, before anything queued meanwhile.
		rest = bpool.StaticFrame(ws.CompiledPing[max(n, 0):])
	}
	if c.w.releaseClaim(rest) {
		c.handOff(true)
	}
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		c.end(err)
	}
}

// testHookDrained, when set, runs in Shutdown right after the drain.
var testHookDrained func()

// drain closes every connection with 1001 after what is already queued, in
// DrainWaves waves spread (with jitter) over the first half of ctx's time.
// Connections still handshaking are ended (there is no WebSocket to close).
func (s *Server) drain(ctx context.Context) {
	var conns []*Conn
	s.Range(func(c *Conn) bool {
		conns = append(conns, c)
		return true
	})
	waves := min(s.cfg.DrainWaves, max(1, len(conns)))
	var gap time.Duration
	if dl, ok := ctx.Deadline(); ok && waves > 1 {
		gap = time.Until(dl) / 2 / time.Duration(waves)
	}
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	for w := 0; w < waves; w++ {
		if w > 0 && gap > 0 {
			jitter := time.Duration(rand.Int64N(int64(gap)/4 + 1))
			select {
			case <-time.After(gap - gap/8 + jitter):
			case <-ctx.Done():
			}
		}
		lo, hi := w*len(conns)/waves, (w+1)*len(conns)/waves
		for _, c := range conns[lo:hi] {
			c.closeWith(shutdownClose, false)
		}
	}
	if testHookDrained != nil {
		testHookDrained()
	}
}

// shutdownClose is the close every client gets at shutdown.
var shutdownClose = &CloseError{Code: ws.StatusGoingAway, Reason: "server shutting down", Err: ErrShutdown}

// teardownGrace bounds Shutdown's wait for the teardowns it forced once its
// context ended (each is quick: workers never wait on a client).
const teardownGrace = 5 * time.Second

// Shutdown stops accepting, closes every connection with 1001 after what is
// already queued, and waits for them to finish until ctx is done; then it
// ends what is left, waits for those teardowns, and stops the pollers and
// workers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		l.close()
	}
	clear(s.listeners)
	s.mu.Unlock()
	// Every socket accepted so far is registered before the drain looks:
	// a closed listener ends its accept loop at once.
	s.acceptWG.Wait()
	if s.stats.Open.Load() == 0 {
		s.goneOnce.Do(func() { close(s.allGone) })
	}
	s.drain(ctx)
	var err error
	select {
	case <-s.allGone:
	case <-ctx.Done():
		err = ctx.Err()
		s.Range(func(c *Conn) bool {
			c.end(ErrShutdown)
			return true
		})
		select {
		case <-s.allGone:
		case <-time.After(teardownGrace):
		}
	}
	s.closeOnce.Do(func() {
		close(s.done)
		s.wg.Wait()
		if perr := s.polls.Close(); perr != nil && err == nil {
			err = perr
		}
		if derr := s.disp.Close(5 * time.Second); derr != nil && err == nil {
			err = derr
		}
	})
	return err
}
