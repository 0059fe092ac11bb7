package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/wsconn"
)

// Server is one wspushd: the WebSocket listener, the hub and the API.
type Server struct {
	cfg     Config // immutable, defaults applied
	capWhy  string // why MaxConns has its value, for the start-up log
	log     *slog.Logger
	hub     *hub.Hub
	ws      *wsconn.Server
	metrics *metrics
	// brokerLag is the delivery lag of publications from the broker; made
	// before the engine (which observes it from its own goroutine) and
	// registered with the other metrics.
	brokerLag prometheus.Histogram
	// latency samples publishes for the delivery-latency histograms; nil
	// when --latency-sample is off. Immutable after New.
	latency *latency.Recorder
	auth    *auth         // nil: authentication off
	ips     *ipTable      // per-IP connection counts and upgrade limiters
	upRate  *rate.Limiter // global upgrade rate; nil: no cap
	memory  *memoryGuard
	ctl     *control // the control topic's subscriber (users.go)

	shutting atomic.Bool   // /readyz says 503 once set
	stopBg   chan struct{} // closed by Shutdown: stops the background loop
	bgDone   chan struct{} // closed when the background loop returned

	mu      sync.Mutex   // guards the fields below
	wsLn    net.Listener // set by Start
	apiLn   net.Listener // set by Start
	api     *http.Server // set by Start
	serveWG sync.WaitGroup
}

// New builds a server from cfg; nothing listens until Start. logger nil
// means slog.Default().
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cfg, why := cfg.withDefaults()
	a, err := newAuth(cfg.JWTSecret, cfg.JWTPublicKey)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, capWhy: why, log: logger, auth: a, ips: newIPTable(),
		memory: newMemoryGuard(cfg.Limits.MaxMemory), ctl: newControl(), stopBg: make(chan struct{}), bgDone: make(chan struct{})}
	if r := cfg.Limits.UpgradeRate; r > 0 {
		s.upRate = rate.NewLimiter(rate.Limit(r), max(1, int(r)))
	}
	maxTopics := cfg.Limits.MaxTopics
	if maxTopics < 0 {
		maxTopics = 0
	}
	s.brokerLag = newBrokerLag()
	s.latency = latency.NewRecorder(cfg.LatencySample)
	ws, err := wsconn.NewServer(cfg.Conn, wsconn.ServerOptions{
		Handler:  (*handler)(s),
		Logger:   logger,
		MaxConns: cfg.MaxConns,
	})
	if err != nil {
		return nil, err
	}
	s.ws = ws
	s.hub, err = hub.New(hub.Config{Shards: cfg.HubShards, MaxTopics: maxTopics, Timeout: cfg.EngineTimeout,
		NewEngine: s.newEngine, EncodeReset: encodeReset, Latency: s.latency,
		BeginFanout: ws.BeginBatch, EndFanout: ws.EndBatch, Policy: s.cfg.TopicPolicy.policy}, encodeFrame)
	if err != nil {
		ws.Shutdown(context.Background())
		return nil, err
	}
	s.metrics = newMetrics(s)
	return s, nil
}

// AuthEnabled reports whether connect tokens are required.
func (s *Server) AuthEnabled() bool { return s.auth != nil }

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// MaxConnsReason explains the effective MaxConns.
func (s *Server) MaxConnsReason() string { return s.capWhy }

// ConnConfig returns the effective connection configuration.
func (s *Server) ConnConfig() wsconn.Config { return s.ws.Config() }

// Pollers reports the number of epoll instances in use.
func (s *Server) Pollers() int { return s.ws.Pollers() }

// Workers reports the dispatch worker pool size.
func (s *Server) Workers() int { return s.ws.WorkersCap() }

// Stats returns the connection counters.
func (s *Server) Stats() *wsconn.Stats { return s.ws.Stats() }

// Hub returns the topic hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Start binds both listeners and serves them in the background.
func (s *Server) Start() error {
	wsLn, err := listenWS(s.cfg)
	if err != nil {
		return fmt.Errorf("server: websocket listener: %w", err)
	}
	apiLn, err := net.Listen("tcp", s.cfg.APIListen)
	if err != nil {
		wsLn.Close()
		return fmt.Errorf("server: api listener: %w", err)
	}
	if s.cfg.APIKey == "" && !s.cfg.APIInsecure && !isLoopback(apiLn.Addr()) {
		wsLn.Close()
		apiLn.Close()
		return fmt.Errorf("%w: the API would listen on %s without an API key; set one, bind a loopback address, or pass --api-insecure", ErrBadConfig, apiLn.Addr())
	}
	api := &http.Server{
		Handler:           s.apiHandler(),
		ReadHeaderTimeout: DefaultAPIReadHeaderTimeout,
		ReadTimeout:       DefaultAPIReadTimeout,
		IdleTimeout:       DefaultAPIIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.wsLn, s.apiLn, s.api = wsLn, apiLn, api
	s.mu.Unlock()
	go s.background()
	s.serveWG.Add(2)
	go func() {
		defer s.serveWG.Done()
		if err := s.ws.Serve(wsLn); err != nil && !errors.Is(err, wsconn.ErrClosed) {
			s.log.Error("websocket listener stopped", "err", err)
		}
	}()
	go func() {
		defer s.serveWG.Done()
		if err := api.Serve(apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api listener stopped", "err", err)
		}
	}()
	return nil
}

// listenWS opens the WebSocket listener; with cfg.ReusePort the socket
// gets SO_REUSEPORT before it binds, so that several processes on one host
// share the port and the kernel spreads new connections over them.
func listenWS(cfg Config) (net.Listener, error) {
	var lc net.ListenConfig
	if cfg.ReusePort {
		lc.Control = setReusePort
	}
	return lc.Listen(context.Background(), "tcp", cfg.Listen)
}

// setReusePort sets SO_REUSEPORT on the raw socket c.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("%w: %w", ErrReusePort, serr)
	}
	return nil
}

// WSAddr returns the WebSocket listener's address, or nil before Start.
func (s *Server) WSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wsLn == nil {
		return nil
	}
	return s.wsLn.Addr()
}

// APIAddr returns the API listener's address, or nil before Start.
func (s *Server) APIAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apiLn == nil {
		return nil
	}
	return s.apiLn.Addr()
}

// Shutdown turns /readyz to 503, stops accepting, flushes what is queued and
// closes every client with 1001, then stops the API. It returns when all is
// done or ctx ends (then remaining connections are dropped).
func (s *Server) Shutdown(ctx context.Context) error {
	if s.shutting.Swap(true) {
		return nil
	}
	err := s.ws.Shutdown(ctx)
	close(s.stopBg)
	s.mu.Lock()
	started := s.wsLn != nil
	s.mu.Unlock()
	if started {
		<-s.bgDone
	}
	s.mu.Lock()
	api := s.api
	s.mu.Unlock()
	if api != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if aerr := api.Shutdown(actx); aerr != nil && err == nil {
			err = aerr
		}
		cancel()
	}
	s.serveWG.Wait()
	if herr := s.hub.Close(); herr != nil && err == nil {
		err = herr
	}
	return err
}

// isLoopback reports whether a listener address is on a loopback interface
// (an unspecified address, like ":8081", is not).
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// background samples memory against the budget, evicts idle per-IP
// limiters, listens to the control topic and carries out its messages,
// until Shutdown.
func (s *Server) background() {
	defer close(s.bgDone)
	defer s.stopControl()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	s.memory.sample()
	s.listenControl()
	for i := 0; ; i++ {
		select {
		case <-s.stopBg:
			return
		case f := <-s.ctl.ch:
			s.handleControl(f.B)
			f.Release()
		case now := <-t.C:
			s.memory.sample()
			s.listenControl()
			if i%60 == 59 {
				s.ips.evictIdle(now, 2*time.Minute)
			}
		}
	}
}
