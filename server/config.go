package server

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/engine/memory"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/wsconn"
)

// Config is wspushd's configuration. The zero value is valid: every field
// says its default and what zero means.
type Config struct {
	// Listen is the WebSocket listener's address. Empty means
	// DefaultListen.
	Listen string
	// ReusePort sets SO_REUSEPORT on the WebSocket listener (not the API's),
	// so that several wspushd processes on one host listen on the same
	// port and the kernel spreads incoming connections over them. Default
	// off: a second process on the port then fails to start.
	ReusePort bool
	// APIListen is the HTTP API's address. Empty means DefaultAPIListen.
	APIListen string
	// MaxConns caps upgraded connections; beyond it upgrades get HTTP 503.
	// Zero means derived from the open-file limit (see DefaultMaxConns);
	// negative means no cap.
	MaxConns int
	// ClientPublish lets clients publish with {"op":"publish"}. Default off:
	// publishing is the API's job.
	ClientPublish bool
	// AllowedOrigins lists the Origin header values allowed to upgrade
	// ("https://app.example.com", "*" for any). Empty means any origin. A
	// request without Origin (not from a browser) is always allowed.
	AllowedOrigins []string
	// Pprof serves /debug/pprof/ on the API listener. Default off.
	Pprof bool
	// Demo serves a demo page at GET / on the WebSocket listener: connect,
	// subscribe, publish (with ClientPublish) and watch deliveries from a
	// browser, through the client served at /wspush.js. Default off: GET /
	// is refused like any path but /ws and /wspush.js.
	Demo bool
	// ShutdownTimeout bounds the graceful shutdown. Zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// HubShards is the number of topic-map shards. Zero means
	// hub.DefaultShards.
	HubShards int
	// Conn tunes the connections; its zero value is valid too.
	Conn wsconn.Config
	// TopicPolicy gives the topics whose names match its globs their own
	// slow-consumer policy (conflate, close, drop-oldest, drop-newest)
	// instead of Conn.SlowPolicy. The zero value has no entry: every
	// topic follows Conn.SlowPolicy.
	TopicPolicy TopicPolicy
	// Limits bounds what clients may use; its zero value is valid too.
	Limits Limits
	// JWTSecret turns on connect tokens signed with HS256 and this secret.
	// Empty (and no JWTPublicKey) means authentication is off.
	JWTSecret string
	// JWTPublicKey turns on connect tokens signed with RS256 or ES256,
	// verified with this PEM public key. Empty means not used.
	JWTPublicKey []byte
	// APIKey protects the API listener (all but /healthz and /readyz): a
	// request must carry "Authorization: apikey <key>". Empty means no key,
	// and then the API refuses a non-loopback address unless APIInsecure.
	APIKey string
	// TrustedProxies are the addresses of the proxies in front (a TLS
	// terminator, a load balancer) whose X-Forwarded-For header is believed:
	// per-IP limits then count the client it names, the rightmost address
	// that is not itself a trusted proxy. Empty means the header is ignored
	// and the peer address is the client, so behind a proxy every client
	// counts as the proxy.
	TrustedProxies []netip.Prefix
	// APIInsecure lets the API listen on a non-loopback address without an
	// APIKey. Default false.
	APIInsecure bool
	// HistorySize is how many publications each topic keeps for clients
	// that resume (recovery). Zero means none: every recovery answers
	// recovered:false.
	HistorySize int
	// HistoryTTL is how long a kept publication stays at most. Zero means
	// DefaultHistoryTTL.
	HistoryTTL time.Duration
	// Broker makes several wspushd nodes one system through Redis:
	// redis://[user:password@]host:port/db or rediss:// (TLS); a Redis
	// Cluster as redis+cluster://[user:password@]host1:port1,host2:port2/ or
	// rediss+cluster:// (see engine/redis Config.URL). Empty means the
	// embedded engine: this process alone.
	Broker string
	// NodeName names this node in logs, metrics and /healthz. Empty means
	// DefaultNodeName().
	NodeName string
	// EngineTimeout bounds one call into the engine (a publish, a
	// subscribe's listen or history read). Zero means DefaultEngineTimeout.
	EngineTimeout time.Duration
	// LatencySample is the time between two publishes sampled for
	// wspush_delivery_latency_seconds and wspush_fanout_seconds (the time
	// from a publication's arrival at this node's fan-out to each socket
	// write that carries it, and to the last one). Zero means
	// DefaultLatencySample; negative turns the sampling off.
	LatencySample time.Duration
}

// Defaults: the one place each server default value is written. Config's
// and Limits' zero fields take these, and wspushd's flags show them.
const (
	// DefaultListen is Config.Listen's default: the WebSocket listener.
	DefaultListen = ":8080"
	// DefaultAPIListen is Config.APIListen's default: the HTTP API, on
	// loopback only.
	DefaultAPIListen = "127.0.0.1:8081"
	// DefaultShutdownTimeout is Config.ShutdownTimeout's default.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultHistoryTTL is Config.HistoryTTL's default.
	DefaultHistoryTTL = memory.DefaultHistoryTTL
	// DefaultEngineTimeout is Config.EngineTimeout's default.
	DefaultEngineTimeout = 2 * time.Second
	// DefaultLatencySample is Config.LatencySample's default: at most ten
	// sampled publishes a second.
	DefaultLatencySample = latency.DefaultEvery
	// DefaultMaxSubscriptions is Limits.MaxSubscriptions' default.
	DefaultMaxSubscriptions = 100
	// DefaultMaxTopics is Limits.MaxTopics' default.
	DefaultMaxTopics = 1_000_000
	// DefaultCommandRate is Limits.CommandRate's default, per second.
	DefaultCommandRate = 50
	// DefaultAPIReadHeaderTimeout bounds reading an API request's headers.
	DefaultAPIReadHeaderTimeout = 10 * time.Second
	// DefaultAPIReadTimeout bounds reading a whole API request, body
	// included, so a client trickling a body cannot hold a connection.
	DefaultAPIReadTimeout = 30 * time.Second
	// DefaultAPIIdleTimeout closes an API keep-alive connection idle this
	// long between requests.
	DefaultAPIIdleTimeout = 60 * time.Second
)

// DefaultNodeName is Config.NodeName's default: the host name and the
// process id, "host-1234".
func DefaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "wspushd"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

// fdHeadroom is kept free of connections for listeners, epoll and eventfd
// descriptors, log files and the API's own connections.
const fdHeadroom = 256

// DefaultMaxConns derives the connection cap from the process's open-file
// limit: one descriptor per connection, minus headroom. It also returns the
// explanation the start-up log prints.
func DefaultMaxConns() (int, string) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 10000, fmt.Sprintf("getrlimit failed (%v): using 10000", err)
	}
	n := int(rl.Cur) - fdHeadroom
	if n < 1 {
		n = 1
	}
	return n, fmt.Sprintf("open-file limit %d minus %d descriptors of headroom", rl.Cur, fdHeadroom)
}

// withDefaults returns c with zero fields resolved, and the reason for the
// connection cap.
func (c Config) withDefaults() (Config, string) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.APIListen == "" {
		c.APIListen = DefaultAPIListen
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = DefaultHistoryTTL
	}
	if c.EngineTimeout <= 0 {
		c.EngineTimeout = DefaultEngineTimeout
	}
	if c.LatencySample == 0 {
		c.LatencySample = DefaultLatencySample
	}
	if c.NodeName == "" {
		c.NodeName = DefaultNodeName()
	}
	why := "set by configuration"
	switch {
	case c.MaxConns == 0:
		c.MaxConns, why = DefaultMaxConns()
	case c.MaxConns < 0:
		c.MaxConns, why = 0, "no cap (negative --max-conns)"
	}
	c.Limits = c.Limits.withDefaults()
	for i, o := range c.AllowedOrigins {
		c.AllowedOrigins[i] = strings.TrimSpace(o)
	}
	return c, why
}
