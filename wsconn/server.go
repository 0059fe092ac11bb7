package wsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/prefixes"
	"github.com/wspush/wspush/netpoll"
)

// Handler is the application side of the connections. Its methods run on
// dispatch workers (Accept, OnMessage) or on whatever goroutine ended the
// connection (OnClose); they must not block.
type Handler interface {
	// Accept decides an upgrade once the request is complete and valid,
	// before the 101 response is queued; what it sets up (subscriptions) is
	// in place before the client can see the response. A non-nil error
	// refuses the upgrade; return an *HTTPError to choose the status.
	Accept(c *Conn, r *Request) error
	// OnRefused reports an upgrade that was refused or malformed, with the
	// HTTP status sent.
	OnRefused(c *Conn, status int, reason string)
	// OnMessage is called for each complete text or binary message, in
	// order. p is valid only until OnMessage returns.
	OnMessage(c *Conn, op ws.OpCode, p []byte)
	// OnClose is called exactly once per connection, after it is torn down
	// (for refused upgrades too). cause says why; it may be nil.
	OnClose(c *Conn, cause error)
}

// registryShards is the number of connection registry shards.
const registryShards = 64

// connShard is one slice of the connection registry.
type connShard struct {
	mu    sync.Mutex
	conns []*Conn // guarded by mu; Conn.shardIdx is the position
}

// Server accepts WebSocket connections and owns them until they close: the
// pollers, the worker pool, the registry, the sweeper for pings and
// timeouts, and shutdown.
type Server struct {
	cfg     Config // immutable, defaults applied
	handler Handler
	log     *slog.Logger
	stats   Stats
	polls   *netpoll.Group
	disp    *dispatch.Dispatcher

	shards      [registryShards]connShard
	upgradedNow atomic.Int64 // upgraded connections not yet torn down
	maxConns    int64        // immutable; 0 = unlimited

	mu        sync.Mutex
	listeners map[*listener]struct{} // guarded by mu
	shutting  atomic.Bool            // Shutdown has begun
	allGone   chan struct{}          // closed when shutting and no connection is left
	goneOnce  sync.Once

	sweepStop chan struct{}
	wg        sync.WaitGroup // the sweeper and the accept loops
	closeOnce sync.Once
}

// ServerOptions are what a Server needs besides Config.
type ServerOptions struct {
	// Handler receives the connections' events. Required.
	Handler Handler
	// Logger is used for rare events (panics, accept errors). Nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxConns caps upgraded connections; an upgrade beyond it is refused
	// with 503 before the 101. Zero means no cap.
	MaxConns int
	// OnPanic is called for every recovered handler panic, after the
	// connection was closed. It may be nil.
	OnPanic func(*dispatch.PanicError)
}

// NewServer starts the pollers, the worker pool and the sweeper. Call
// Serve with a listener, and Shutdown when done.
func NewServer(cfg Config, opt ServerOptions) (*Server, error) {
	if opt.Handler == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrBadConfig)
	}
	s := &Server{
		cfg:       cfg.withDefaults(),
		handler:   opt.Handler,
		log:       opt.Logger,
		maxConns:  int64(opt.MaxConns),
		listeners: make(map[*listener]struct{}),
		allGone:   make(chan struct{}),
		sweepStop: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.polls, err = netpoll.NewGroup(s.cfg.Pollers); err != nil {
		return nil, fmt.Errorf("wsconn: pollers: %w", err)
	}
	s.disp, err = dispatch.New(dispatch.Config{Workers: s.cfg.Workers, OnPanic: opt.OnPanic})
	if err != nil {
		s.polls.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.sweepLoop()
	return s, nil
}

// Stats returns the server's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Pollers reports the number of epoll instances.
func (s *Server) Pollers() int { return s.polls.Size() }

// WorkersBusy reports dispatch workers serving a connection right now.
func (s *Server) WorkersBusy() int { return s.disp.Busy() }

// WorkersAlive reports the pool's worker goroutines, busy or idle.
func (s *Server) WorkersAlive() int { return s.disp.Running() }

// WorkersCap reports the dispatch pool size.
func (s *Server) WorkersCap() int { return s.disp.Cap() }

// Upgraded reports the upgraded connections that are still open.
func (s *Server) Upgraded() int64 { return s.upgradedNow.Load() }

// Serve accepts connections on ln until ln is closed or Shutdown is called;
// it then returns nil (after Shutdown) or the accept error. ln must be a TCP
// listener (anything with SyscallConn). Sockets are accepted raw with
// accept4, never wrapped in a net.Conn, so a connection costs no netFD,
// addresses or runtime poll descriptor. The listener itself is watched by a
// poller like any socket: Serve waits on it without a goroutine in accept.
func (s *Server) Serve(ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%w: listener %T has no SyscallConn", ErrBadConfig, ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("wsconn: listener: %w", err)
	}
	lfd, err := netpoll.FD(sc)
	if err != nil {
		return fmt.Errorf("wsconn: listener: %w", err)
	}
	l := &listener{ln: ln, fd: lfd, poll: s.polls.Poller(lfd), ready: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrClosed
	}
	if err := l.poll.Add(lfd, l); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("wsconn: listener: %w", err)
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var (
		nfd   int
		sa    unix.Sockaddr
		aerr  error
		delay time.Duration
	)
	// accept runs inside RawConn.Control, which keeps the listener's
	// descriptor from being closed (and its number reused) meanwhile.
	accept := func(fd uintptr) {
		nfd, sa, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	}
	for {
		if err := rc.Control(accept); err != nil {
			if s.shutting.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("wsconn: accept: %w", err)
		}
		switch {
		case aerr == nil:
		case errors.Is(aerr, unix.EAGAIN):
			if err := l.poll.Rearm(lfd); err != nil {
				if s.shutting.Load() {
					return nil
				}
				return fmt.Errorf("wsconn: accept: %w", err)
			}
			select {
			case <-l.ready:
				continue
			case <-s.sweepStop:
				return nil
			}
		case errors.Is(aerr, unix.EINTR), errors.Is(aerr, unix.ECONNABORTED):
			continue
		case errors.Is(aerr, unix.EMFILE), errors.Is(aerr, unix.ENFILE),
			errors.Is(aerr, unix.ENOBUFS), errors.Is(aerr, unix.ENOMEM):
			// Out of descriptors or memory: wait and retry, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", aerr, "in", delay)
			time.Sleep(delay)
			continue
		default:
			if s.shutting.Load() {
				return nil
			}
			return fmt.Errorf("wsconn: accept: %w", os.NewSyscallError("accept4", aerr))
		}
		delay = 0
		s.stats.Accepted.Add(1)
		if err := s.register(nfd, sa); err != nil {
			s.log.Debug("register failed", "err", err)
		}
	}
}

// listener is a Serve call's listening socket, registered with a poller.
type listener struct {
	ln    net.Listener
	fd    int
	poll  *netpoll.Poller
	ready chan struct{} // cap 1: the listener is readable
}

// HandleEvent implements netpoll.Handler: wake the accept loop.
func (l *listener) HandleEvent(fd int, ev netpoll.Event) {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// close unregisters and closes the listening socket.
func (l *listener) close() {
	_ = l.poll.Remove(l.fd)
	_ = l.ln.Close()
	l.HandleEvent(l.fd, 0)
}

// sockaddrPort converts an accepted peer address.
func sockaddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// register wraps an accepted socket and hands it to a poller.
func (s *Server) register(fd int, sa unix.Sockaddr) error {
	// Small frames must not wait for Nagle: pushes are latency-sensitive.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := &Conn{srv: s, fd: int32(fd), remote: sockaddrPort(sa)}
	c.proxyPending = prefixes.Contains(s.cfg.ProxyProtocol, c.remote.Addr())
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	c.deadline.Store(now.Add(s.cfg.HandshakeTimeout).UnixNano())
	c.q.gated = true
	// c.poll is set before c is visible to anyone (registry, sweeper, the
	// first event on a worker).
	c.poll = s.polls.Poller(fd)
	s.stats.Open.Add(1)
	sh := &s.shards[fd%registryShards]
	sh.mu.Lock()
	c.shardIdx = int32(len(sh.conns))
	sh.conns = append(sh.conns, c)
	sh.mu.Unlock()
	if err := c.poll.Add(fd, c); err != nil {
		c.teardown(err)
		return err
	}
	return nil
}

// unregister removes c from the registry. Called once, by teardown.
func (s *Server) unregister(c *Conn) {
	sh := &s.shards[int(c.fd)%registryShards]
	sh.mu.Lock()
	i := int(c.shardIdx)
	if i < len(sh.conns) && sh.conns[i] == c {
		last := len(sh.conns) - 1
		sh.conns[i] = sh.conns[last]
		sh.conns[i].shardIdx = int32(i)
		sh.conns[last] = nil
		sh.conns = sh.conns[:last]
		if cap(sh.conns) > 1024 && len(sh.conns) < cap(sh.conns)/4 {
			sh.conns = append([]*Conn(nil), sh.conns...)
		}
	}
	sh.mu.Unlock()
	c.release()
	if s.stats.Open.Add(-1) == 0 && s.shutting.Load() {
		s.goneOnce.Do(func() { close(s.allGone) })
	}
}

// admit applies shutdown and MaxConns to an upgrade, reserving c's place
// atomically (so MaxConns is never overshot).
func (s *Server) admit(c *Conn) error {
	if s.shutting.Load() {
		return &HTTPError{Status: http.StatusServiceUnavailable, Reason: "server shutting down"}
	}
	if n := s.upgradedNow.Add(1); s.maxConns > 0 && n > s.maxConns {
		s.upgradedNow.Add(-1)
		return &HTTPError{Status: http.StatusServiceUnavailable, Reason: "too many connections"}
	}
	c.upgraded.Store(true)
	if c.state.Load() == stateClosed {
		c.release() // torn down meanwhile: give the place back
	}
	return nil
}

// release gives back c's MaxConns place; only the first call counts.
func (c *Conn) release() {
	if c.upgraded.Swap(false) {
		c.srv.upgradedNow.Add(-1)
	}
}

// Range calls fn for every registered connection until fn returns false.
// fn runs without registry locks held.
func (s *Server) Range(fn func(*Conn) bool) {
	var buf []*Conn
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		buf = append(buf[:0], sh.conns...)
		sh.mu.Unlock()
		for _, c := range buf {
			if !fn(c) {
				return
			}
		}
	}
}

// Queued reports the frames waiting in out queues now, summed over the
// connections at call time (for metrics: no shared counter is touched per
// delivery).
func (s *Server) Queued() int64 {
	var n int64
	s.Range(func(c *Conn) bool {
		n += int64(c.Pending())
		return true
	})
	return n
}

// Len reports the registered connections (handshaking, open or closing).
func (s *Server) Len() int { return int(s.stats.Open.Load()) }

// cfgLogPanic logs a recovered handler panic with its stack.
func (s *Server) cfgLogPanic(c *Conn, err error) {
	var pe *dispatch.PanicError
	if errors.As(err, &pe) {
		s.log.Error("handler panic; connection closed", "remote", c.RemoteAddr().String(), "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
}

// sweepLoop is the one timer for all connections: handshake and close
// deadlines, idle timeouts and pings.
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	nextPing := time.Now().Add(s.cfg.PingInterval)
	var buf []*Conn
	for {
		select {
		case <-s.sweepStop:
			return
		case now := <-t.C:
			ping := s.cfg.PingInterval > 0 && !now.Before(nextPing)
			if ping {
				nextPing = now.Add(s.cfg.PingInterval)
			}
			for i := range s.shards {
				sh := &s.shards[i]
				sh.mu.Lock()
				buf = append(buf[:0], sh.conns...)
				sh.mu.Unlock()
				for _, c := range buf {
					s.sweepConn(c, now.UnixNano(), ping)
				}
			}
			clear(buf)
		}
	}
}

// pingFrame is shared by every ping; it is never pooled.
var pingFrame = bpool.StaticFrame(ws.CompiledPing)

func (s *Server) sweepConn(c *Conn, now int64, ping bool) {
	switch c.state.Load() {
	case stateHandshake:
		if now > c.deadline.Load() {
			c.srv.stats.HandshakeFailed.Add(1)
			c.teardown(ErrHandshakeTimeout)
		}
	case stateClosing:
		if now > c.deadline.Load() {
			c.teardown(nil)
		}
	case stateOpen:
		silent := time.Duration(now - c.lastRead.Load())
		if s.cfg.IdleTimeout > 0 && silent > s.cfg.IdleTimeout {
			c.closeWith(&CloseError{Code: ws.StatusGoingAway, Reason: "idle timeout", Err: ErrIdle}, false)
			return
		}
		if ping && silent >= s.cfg.PingInterval {
			c.sendControl(pingFrame)
		}
	}
}

// drain closes every connection with 1001 after what is already queued, in
// DrainWaves waves spread (with jitter) over the first half of ctx's time.
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
			c.closeWith(&CloseError{Code: ws.StatusGoingAway, Reason: "server shutting down", Err: ErrShutdown}, false)
		}
	}
	// Connections that were mid-handshake when draining began are closed by
	// the loop above too (closeWith tears them down).
}

// Shutdown stops accepting, closes every connection with 1001 after what is
// already queued, and waits for them to finish until ctx is done; then it
// tears down what is left and stops the pollers and workers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		l.close()
	}
	clear(s.listeners)
	s.mu.Unlock()
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
			c.teardown(ErrShutdown)
			return true
		})
	}
	s.closeOnce.Do(func() {
		close(s.sweepStop)
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
