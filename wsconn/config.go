package wsconn

import (
	"fmt"
	"net/netip"
	"time"
)

// SlowPolicy is what Send does when a connection's out queue is full.
type SlowPolicy uint8

const (
	// DropOldest discards the oldest queued message to make room (default).
	DropOldest SlowPolicy = iota
	// DropNewest discards the message being sent.
	DropNewest
	// CloseSlow discards everything queued and closes the connection with
	// 1008 "slow consumer".
	CloseSlow
)

// String returns the flag spelling of the policy.
func (p SlowPolicy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	case CloseSlow:
		return "close"
	}
	return fmt.Sprintf("SlowPolicy(%d)", p)
}

// ParseSlowPolicy parses drop-oldest, drop-newest or close.
func ParseSlowPolicy(s string) (SlowPolicy, error) {
	for _, p := range []SlowPolicy{DropOldest, DropNewest, CloseSlow} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: slow policy %q (want drop-oldest, drop-newest or close)", ErrBadConfig, s)
}

// WriterMode says how long a connection's writer goroutine lives.
type WriterMode uint8

const (
	// WriterOnDemand starts the writer when the queue gets work and lets it
	// exit once the queue is empty, so an idle connection has no goroutine
	// (default).
	WriterOnDemand WriterMode = iota
	// WriterPersistent runs one writer goroutine for the connection's whole
	// life. Same code; it costs a goroutine stack per connection.
	WriterPersistent
)

// String returns the flag spelling of the mode.
func (m WriterMode) String() string {
	switch m {
	case WriterOnDemand:
		return "on-demand"
	case WriterPersistent:
		return "persistent"
	}
	return fmt.Sprintf("WriterMode(%d)", m)
}

// ParseWriterMode parses on-demand or persistent.
func ParseWriterMode(s string) (WriterMode, error) {
	switch s {
	case "on-demand":
		return WriterOnDemand, nil
	case "persistent":
		return WriterPersistent, nil
	}
	return 0, fmt.Errorf("%w: writer mode %q (want on-demand or persistent)", ErrBadConfig, s)
}

// Config tunes every connection of a Server. The zero value is valid; each
// field says what zero means.
type Config struct {
	// SendQueue bounds the messages queued for one connection. Zero means 64.
	// Control frames and command replies are never dropped, but a connection
	// with more than twice this many frames pending is closed as slow.
	SendQueue int
	// SlowPolicy is applied when the queue is full. Zero means DropOldest.
	SlowPolicy SlowPolicy
	// Writer selects the writer goroutine's lifetime. Zero means
	// WriterOnDemand.
	Writer WriterMode
	// WriteTimeout bounds each socket write; a writer that cannot write for
	// this long closes the connection. Zero means 10s.
	WriteTimeout time.Duration
	// MaxMessage is the largest message (after reassembly) a client may
	// send, in bytes; larger ones close with 1009. Zero means 64 KiB.
	MaxMessage int
	// MaxHandshake is the largest upgrade request, in bytes; larger ones are
	// refused with HTTP 431. Zero means 8 KiB.
	MaxHandshake int
	// PingInterval is how often the server pings each connection. Zero
	// means 25s; negative turns pings off.
	PingInterval time.Duration
	// IdleTimeout closes a connection from which nothing was read for this
	// long. Zero means 60s; negative turns it off.
	IdleTimeout time.Duration
	// HandshakeTimeout closes a connection that has not completed its
	// upgrade request after this long. Zero means 10s.
	HandshakeTimeout time.Duration
	// CloseTimeout is how long a connection that sent a close frame waits for
	// the peer's close or EOF before it is dropped. Zero means 3s.
	CloseTimeout time.Duration
	// SweepInterval is how often the one sweeper walks all connections for
	// pings and timeouts. Zero means 1s.
	SweepInterval time.Duration
	// Pollers is the number of epoll instances. Zero means netpoll's default.
	Pollers int
	// Workers is the dispatch pool size. Zero means dispatch's default.
	Workers int
	// DrainWaves spreads the shutdown's 1001 closes over this many waves
	// (with jitter) across the first half of the shutdown budget, so that
	// clients do not all reconnect at once. Zero means 1: all at once.
	DrainWaves int
	// ProxyProtocol lists the peers (the proxies in front: HAProxy
	// send-proxy, an AWS NLB, Envoy) whose connections start with a PROXY
	// protocol v1 or v2 header; the client address in it becomes the
	// connection's RemoteAddr. From these peers the header is required: a
	// connection without a valid one is refused with HTTP 400. Connections
	// from other peers are never read for one. Empty means none.
	ProxyProtocol []netip.Prefix
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.SendQueue <= 0 {
		c.SendQueue = 64
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 64 << 10
	}
	if c.MaxHandshake <= 0 {
		c.MaxHandshake = 8 << 10
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 3 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
	if c.DrainWaves <= 0 {
		c.DrainWaves = 1
	}
	return c
}
