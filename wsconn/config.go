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

// Defaults: the one place each default value is written. Config's zero
// fields take these, and wspushd's flags show them.
const (
	DefaultSendQueue        = 64               // Config.SendQueue
	DefaultWriteTimeout     = 10 * time.Second // Config.WriteTimeout
	DefaultMaxMessage       = 64 << 10         // Config.MaxMessage, bytes
	DefaultMaxHandshake     = 8 << 10          // Config.MaxHandshake, bytes
	DefaultPingInterval     = 25 * time.Second // Config.PingInterval
	DefaultIdleTimeout      = 60 * time.Second // Config.IdleTimeout
	DefaultReadTimeout      = 30 * time.Second // Config.ReadTimeout
	DefaultHandshakeTimeout = 10 * time.Second // Config.HandshakeTimeout
	DefaultCloseTimeout     = 3 * time.Second  // Config.CloseTimeout
	DefaultSweepInterval    = time.Second      // Config.SweepInterval
	DefaultDrainWaves       = 1                // Config.DrainWaves: all at once
	// DefaultCompressionMinSize is Config.CompressionMinSize, bytes.
	DefaultCompressionMinSize = 256
)

// Config tunes every connection of a Server. The zero value is valid; each
// field says what zero means.
type Config struct {
	// SendQueue bounds the messages queued for one connection. Zero means
	// DefaultSendQueue.
	// Control frames and command replies are never dropped, but a connection
	// with more than twice this many frames pending is closed as slow.
	SendQueue int
	// SlowPolicy is applied when the queue is full, to a delivery that
	// carries no policy of its own (bpool.Frame.Slow: the hub marks a
	// topic's frames with its --topic-policy) and to a conflated one that
	// found no queued message of its topic to replace. Zero means
	// DropOldest.
	SlowPolicy SlowPolicy
	// Writer selects the writer goroutine's lifetime. Zero means
	// WriterOnDemand.
	Writer WriterMode
	// WriteTimeout bounds each socket write: a writer that makes no progress
	// for this long closes the connection (every byte written restarts it,
	// so a slow but steadily reading client is not a stuck one). Zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxMessage is the largest message (after reassembly) a client may
	// send, in bytes; larger ones close with 1009. Zero means DefaultMaxMessage.
	MaxMessage int
	// MaxHandshake is the largest upgrade request, in bytes; larger ones are
	// refused with HTTP 431. Zero means DefaultMaxHandshake.
	MaxHandshake int
	// PingInterval is how often the server pings each connection that
	// sent nothing since the last ping round (a pong counts as something
	// for the round after it only) and was sent no delivery either (written
	// deliveries prove the peer alive: see IdleTimeout). Zero means
	// DefaultPingInterval; negative turns pings off.
	PingInterval time.Duration
	// IdleTimeout closes a connection from which nothing was read for this
	// long, counting a ping round that found deliveries written since the
	// one before as a read. Such a round (the first for a connection) also
	// sets the socket's TCP_USER_TIMEOUT to this: the kernel then ends a
	// connection whose written bytes stay unacknowledged this long, so a
	// dead peer that is sent deliveries (and therefore no pings) is found
	// as soon as one that is pinged. Zero means DefaultIdleTimeout;
	// negative turns it off.
	IdleTimeout time.Duration
	// ReadTimeout bounds one client message: once its first byte has
	// arrived, the rest (every frame of a fragmented message) must follow
	// within this time, else the connection closes with 1008. It stops a
	// client that trickles a large message byte by byte from holding its
	// buffer forever. Zero means DefaultReadTimeout; negative turns it off.
	ReadTimeout time.Duration
	// HandshakeTimeout closes a connection that has not completed its
	// upgrade request after this long. Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// CloseTimeout is how long a connection that sent a close frame waits for
	// the peer's close or EOF before it is dropped. Zero means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// SweepInterval is how often the one sweeper walks all connections for
	// pings and timeouts. Zero means DefaultSweepInterval.
	SweepInterval time.Duration
	// Pollers is the number of epoll instances. Zero means netpoll's default.
	Pollers int
	// Workers is the dispatch pool size. Zero means dispatch's default.
	Workers int
	// DrainWaves spreads the shutdown's 1001 closes over this many waves
	// (with jitter) across the first half of the shutdown budget, so that
	// clients do not all reconnect at once. Zero means DefaultDrainWaves.
	DrainWaves int
	// ProxyProtocol lists the peers (the proxies in front: HAProxy
	// send-proxy, an AWS NLB, Envoy) whose connections start with a PROXY
	// protocol v1 or v2 header; the client address in it becomes the
	// connection's RemoteAddr. From these peers the header is required: a
	// connection without a valid one is refused with HTTP 400. Connections
	// from other peers are never read for one. Empty means none.
	ProxyProtocol []netip.Prefix
	// Compression accepts permessage-deflate (RFC 7692) when a client
	// offers it, without context takeover either way: a delivery is
	// compressed once per publish and shared by every recipient that
	// negotiated it, and no connection keeps a compression context.
	// Compressed client messages are inflated up to MaxMessage. Off by
	// default: no extension is accepted.
	Compression bool
	// CompressionMinSize is the smallest delivery payload, in bytes, that
	// is compressed (smaller ones go out plain, which a client that
	// negotiated the extension accepts). Zero means
	// DefaultCompressionMinSize.
	CompressionMinSize int
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	setDefault(&c.SendQueue, DefaultSendQueue)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.MaxMessage, DefaultMaxMessage)
	setDefault(&c.MaxHandshake, DefaultMaxHandshake)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.CloseTimeout, DefaultCloseTimeout)
	setDefault(&c.SweepInterval, DefaultSweepInterval)
	setDefault(&c.DrainWaves, DefaultDrainWaves)
	setDefault(&c.CompressionMinSize, DefaultCompressionMinSize)
	// Zero means the default; negative means off and stays negative.
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c
}

// setDefault replaces a zero or negative *v with def.
func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
