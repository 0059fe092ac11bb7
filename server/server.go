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
	"time"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
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

	shutting atomic.Bool // /readyz says 503 once set

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
	s := &Server{cfg: cfg, capWhy: why, log: logger}
	s.hub = hub.New(hub.Config{Shards: cfg.HubShards}, protocol.NewDeliveryFrame)
	ws, err := wsconn.NewServer(cfg.Conn, wsconn.ServerOptions{
		Handler:  (*handler)(s),
		Logger:   logger,
		MaxConns: cfg.MaxConns,
		OnPanic: func(*dispatch.PanicError) {
			s.metrics.handlerPanics.Add(1)
		},
	})
	if err != nil {
		return nil, err
	}
	s.ws = ws
	s.metrics = newMetrics(s)
	return s, nil
}

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
	wsLn, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: websocket listener: %w", err)
	}
	apiLn, err := net.Listen("tcp", s.cfg.APIListen)
	if err != nil {
		wsLn.Close()
		return fmt.Errorf("server: api listener: %w", err)
	}
	api := &http.Server{
		Handler:           s.apiHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.wsLn, s.apiLn, s.api = wsLn, apiLn, api
	s.mu.Unlock()
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
	s.shutting.Store(true)
	err := s.ws.Shutdown(ctx)
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
	return err
}
