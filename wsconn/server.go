package wsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/internal/prefixes"
	"github.com/wspush/wspush/netpoll"
)

// Handler is the application side of the connections. Every method runs on
// the connection's dispatch slot: one worker at a time per connection, in
// order, OnClose last. They must not block.
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
	// (for refused upgrades and connections that never finished the
	// upgrade too); no other callback for the connection follows it. cause
	// says why; it may be nil.
	OnClose(c *Conn, cause error)
}

// StaticHandler is implemented by a Handler that also serves a few small
// files over plain HTTP on the WebSocket listener (the JS client). A GET
// without an Upgrade header for a path Static knows is answered with the
// file and closed; the connection never opens (OnClose still follows).
type StaticHandler interface {
	// Static returns the file at path (the request target without its
	// query; valid only during the call) and its content type; ok false
	// sends the request on to the upgrade. It runs for every upgrade
	// request too, so it must be cheap and allocate nothing.
	Static(path []byte) (contentType string, body []byte, ok bool)
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
	cfg     Config      // immutable, defaults applied
	qpol    queuePolicy // shared by every connection's writer; immutable
	handler Handler
	log     *slog.Logger
	stats   Stats
	polls   *netpoll.Group
	disp    *dispatch.Dispatcher
	// flushers write what pushes queued on idle connections (flush.go);
	// the slice is immutable after NewServer.
	flushers []flusher
	batches  atomic.Int32 // open BeginBatch calls

	shards      [registryShards]connShard
	upgradedNow atomic.Int64 // connections holding a MaxConns place (Conn.admitted)
	maxConns    int64        // immutable; 0 = unlimited

	mu        sync.Mutex
	listeners map[*listener]struct{} // guarded by mu
	shutting  atomic.Bool            // Shutdown has begun
	allGone   chan struct{}          // closed when shutting and no connection is left
	goneOnce  sync.Once

	// done is closed when Shutdown is over: it stops the sweeper and the
	// accept loops.
	done      chan struct{}
	wg        sync.WaitGroup // the sweeper
	acceptWG  sync.WaitGroup // the accept loops (Serve calls)
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
		done:      make(chan struct{}),
	}
	s.qpol = queuePolicy{limit: int32(s.cfg.SendQueue), slow: s.cfg.SlowPolicy,
		persistent: s.cfg.Writer == WriterPersistent, stats: &s.stats,
		pressureAt: max(1, int32(s.cfg.SendQueue)*3/4)}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.polls, err = netpoll.NewGroup(s.cfg.Pollers); err != nil {
		return nil, fmt.Errorf("wsconn: pollers: %w", err)
	}
	s.disp, err = dispatch.New(dispatch.Config{Workers: s.cfg.Workers})
	if err != nil {
		s.polls.Close()
		return nil, err
	}
	s.startFlushers(runtime.GOMAXPROCS(0))
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
	s.acceptWG.Add(1)
	s.mu.Unlock()
	defer s.acceptWG.Done()

	var (
		nfd   int
		peer  netip.AddrPort
		aerr  error
		delay time.Duration
	)
	// accept runs inside RawConn.Control, which keeps the listener's
	// descriptor from being closed (and its number reused) meanwhile.
	accept := func(fd uintptr) {
		nfd, peer, aerr = accept4(int(fd))
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
			case <-s.done:
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
		if err := s.register(nfd, peer); err != nil {
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

// testHookAccepted, when set, runs between an accept and its register (a
// test holds it there while Shutdown starts).
var testHookAccepted func()

// register wraps an accepted socket and hands it to a worker.
func (s *Server) register(fd int, remote netip.AddrPort) error {
	if testHookAccepted != nil {
		testHookAccepted()
	}
	// Small frames must not wait for Nagle: pushes are latency-sensitive.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := &Conn{srv: s, fd: int32(fd), remote: packAddr(remote)}
	c.proxyPending = prefixes.Contains(s.cfg.ProxyProtocol, remote.Addr())
	c.w = writer{pol: &s.qpol, flags: wGated}
	now := time.Now()
	c.lastSeen.Store(now.UnixNano())
	c.deadline.Store(now.Add(s.cfg.HandshakeTimeout).UnixNano())
	// c.poll is set before c is visible to anyone (registry, sweeper, the
	// first event on a worker).
	c.poll = s.polls.Poller(fd)
	s.stats.Open.Add(1)
	sh := &s.shards[fd%registryShards]
	sh.mu.Lock()
	c.shardIdx = int32(len(sh.conns))
	sh.conns = append(sh.conns, c)
	sh.mu.Unlock()
	// Shutdown waits for the accept loops before it drains, so this is
	// only for a Serve that races Shutdown's start.
	if s.shutting.Load() {
		c.end(ErrShutdown)
		return ErrShutdown
	}
	// Served at once: the upgrade request has usually arrived with the
	// connection, so the first read needs no poller event; the worker adds
	// the socket to the poller when it must wait (Conn.arm).
	if err := s.disp.Dispatch((*connTask)(c)); err != nil {
		c.end(err)
		return err
	}
	return nil
}

// unregister removes c from the registry and gives back its MaxConns place.
// Called once, by teardown.
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
	s.unadmit(c)
	if s.stats.Open.Add(-1) == 0 && s.shutting.Load() {
		s.goneOnce.Do(func() { close(s.allGone) })
	}
}

// admit applies shutdown and MaxConns to an upgrade, reserving c's place
// atomically (so MaxConns is never overshot). Worker only.
func (s *Server) admit(c *Conn) error {
	if s.shutting.Load() {
		return &HTTPError{Status: http.StatusServiceUnavailable, Reason: "server shutting down"}
	}
	if n := s.upgradedNow.Add(1); s.maxConns > 0 && n > s.maxConns {
		s.upgradedNow.Add(-1)
		return &HTTPError{Status: http.StatusServiceUnavailable, Reason: "too many connections"}
	}
	c.admitted = true
	return nil
}

// unadmit gives back c's MaxConns place, if it holds one. Worker only.
func (s *Server) unadmit(c *Conn) {
	if c.admitted {
		c.admitted = false
		s.upgradedNow.Add(-1)
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

// logPanic logs a recovered handler panic with its stack.
func (s *Server) logPanic(c *Conn, err error) {
	var pe *dispatch.PanicError
	if errors.As(err, &pe) {
		s.log.Error("handler panic; connection closed", "remote", c.RemoteAddr().String(), "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
}
