package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wspush/wspush/internal/gctune"
	"github.com/wspush/wspush/internal/prefixes"
	"github.com/wspush/wspush/server"
	"github.com/wspush/wspush/wsconn"
)

// Options is everything wspushd takes from flags and WSPUSH_* variables.
type Options struct {
	Server    server.Config
	LogLevel  slog.Level
	LogFormat string // "text" or "json"
	// GCHeadroom is the heap growth the garbage collector allows between
	// collections, in percent of the live heap (gctune); 0 leaves the GC
	// to Go's GOGC. A GOGC variable in the environment wins over it.
	GCHeadroom int
	// GCIdleRelease is how often a quiet process returns its garbage and
	// free heap pages to the OS (gctune); negative turns it off. It needs
	// the headroom tuner (GCHeadroom above 0, no GOGC variable).
	GCIdleRelease time.Duration
}

// envPrefix is prepended to a flag's upper-cased name (dashes become
// underscores) to form its environment variable.
const envPrefix = "WSPUSH_"

// ConfigureOptions defines wspushd's flags on fs, applies WSPUSH_<NAME>
// environment overrides (read through getenv; flags given in args win over
// them), and parses args. It returns flag.ErrHelp for -h.
func ConfigureOptions(fs *flag.FlagSet, args []string, getenv func(string) string) (*Options, error) {
	o := &Options{}
	c := &o.Server
	fs.StringVar(&c.Listen, "listen", server.DefaultListen, "WebSocket listener `address`")
	fs.BoolVar(&c.ReusePort, "reuseport", false, "set SO_REUSEPORT on the WebSocket listener, so several wspushd on one host share --listen's port")
	fs.StringVar(&c.APIListen, "api-listen", server.DefaultAPIListen, "HTTP API listener `address` (publish, health, metrics)")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "most upgraded connections; beyond it upgrades get HTTP 503 (0: open-file limit minus headroom, negative: no cap)")
	fs.IntVar(&c.Conn.Pollers, "pollers", 0, "epoll instances (0: GOMAXPROCS/2, at least 1)")
	fs.IntVar(&c.Conn.Workers, "workers", 0, "dispatch worker pool size (0: 64 x GOMAXPROCS)")
	fs.IntVar(&c.Conn.SendQueue, "send-queue", wsconn.DefaultSendQueue, "messages queued per connection before the slow policy applies")
	slow := fs.String("slow-policy", "drop-oldest", "full-queue policy: drop-oldest, drop-newest or close (1008 \"slow consumer\")")
	fs.Var(&c.TopicPolicy, "topic-policy", "per-topic full-queue policy: comma list of glob=policy, first match wins, e.g. 'prices.*=conflate,chat.*=close'; * matches any run of characters; policies conflate (keep only the latest unwritten message of the topic), close, drop-oldest, drop-newest; other topics, and users' streams, follow --slow-policy")
	writer := fs.String("writer", "on-demand", "writer goroutine lifetime: on-demand (exits when idle) or persistent")
	fs.DurationVar(&c.Conn.WriteTimeout, "write-timeout", wsconn.DefaultWriteTimeout, "close a connection whose socket takes no bytes for this long (every write that makes progress restarts it)")
	fs.DurationVar(&c.Conn.PingInterval, "ping-interval", wsconn.DefaultPingInterval, "how often silent connections are pinged; one written deliveries since its last round is not (negative: never)")
	fs.DurationVar(&c.Conn.IdleTimeout, "idle-timeout", wsconn.DefaultIdleTimeout, "close connections silent for this long, a round that found deliveries written counting as hearing from the client; also each such socket's TCP_USER_TIMEOUT (negative: never)")
	fs.StringVar(&c.Broker, "broker", "", "make several nodes one system through Redis: redis://[user:password@]host:port/db or rediss://; a Redis Cluster as redis+cluster://[user:password@]host1:port1,host2:port2/ or rediss+cluster:// (empty: this process alone)")
	fs.StringVar(&c.NodeName, "node-name", "", "this node's name in logs, metrics and /healthz (empty: host-pid)")
	fs.IntVar(&c.HistorySize, "history-size", 0, "publications each topic keeps for clients that resume with since (0: none, every recovery answers recovered:false)")
	fs.DurationVar(&c.HistoryTTL, "history-ttl", server.DefaultHistoryTTL, "how long a kept publication stays at most")
	fs.DurationVar(&c.EngineTimeout, "engine-timeout", server.DefaultEngineTimeout, "bound on one call into the engine (publish, listen, history read)")
	fs.DurationVar(&c.LatencySample, "latency-sample", server.DefaultLatencySample, "time between two publishes sampled for wspush_delivery_latency_seconds and wspush_fanout_seconds (negative: off)")
	fs.DurationVar(&c.Conn.ReadTimeout, "read-timeout", wsconn.DefaultReadTimeout, "a client message must complete within this time after its first byte, else close 1008 (negative: never)")
	fs.IntVar(&c.Conn.MaxMessage, "max-message", wsconn.DefaultMaxMessage, "largest client message in bytes (and API publish body); larger closes with 1009")
	fs.BoolVar(&c.Conn.Compression, "compression", false, "accept permessage-deflate from clients that offer it (no context takeover: each publish is compressed once for all of them)")
	fs.IntVar(&c.Conn.CompressionMinSize, "compression-min-size", wsconn.DefaultCompressionMinSize, "smallest delivery, in `bytes`, that is compressed (with --compression)")
	fs.BoolVar(&c.ClientPublish, "client-publish", false, "let clients publish with {\"op\":\"publish\"}")
	origins := fs.String("allowed-origins", "", "comma-separated Origin values allowed to upgrade (empty: any; \"*\": any)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the API listener")
	fs.BoolVar(&c.Demo, "demo", false, "serve a demo page at GET / on the WebSocket listener (subscribe, publish with --client-publish, watch deliveries)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&o.GCHeadroom, "gc-headroom", gctune.DefaultHeadroom, "heap growth between garbage collections, in `percent` of the live heap, at least 1 MiB and at most 100 (0: Go's GOGC; a GOGC variable wins)")
	fs.DurationVar(&o.GCIdleRelease, "gc-idle-release", gctune.DefaultIdleRelease, "how often a quiet process (at most one collection and a quarter of a core of CPU since the last look) returns its garbage and free heap pages to the OS (negative: never; needs --gc-headroom)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "graceful shutdown budget on SIGINT/SIGTERM")
	fs.IntVar(&c.Conn.DrainWaves, "drain-waves", wsconn.DefaultDrainWaves, "on shutdown, close clients in this many waves with jitter over half the budget")
	fs.DurationVar(&c.Conn.HandshakeTimeout, "handshake-timeout", wsconn.DefaultHandshakeTimeout, "drop clients that have not completed the upgrade request after this long")
	l := &c.Limits
	fs.IntVar(&l.MaxConnsPerIP, "max-conns-per-ip", 0, "open connections per client IP; more get HTTP 429 (0: no cap)")
	fs.Float64Var(&l.UpgradeRate, "upgrade-rate", 0, "upgrades per second across the server; more get HTTP 429 (0: no cap)")
	fs.Float64Var(&l.UpgradeRatePerIP, "upgrade-rate-per-ip", 0, "upgrades per second per client IP; more get HTTP 429 (0: no cap)")
	fs.IntVar(&l.MaxSubscriptions, "max-subscriptions", server.DefaultMaxSubscriptions, "topics one connection may subscribe to (negative: no cap)")
	fs.IntVar(&l.MaxTopics, "max-topics", server.DefaultMaxTopics, "topics that may exist at once (negative: no cap)")
	fs.Float64Var(&l.CommandRate, "command-rate", server.DefaultCommandRate, "commands per second per connection, burst twice that; more get error \"limit\" (negative: no cap)")
	fs.Var((*byteSize)(&l.MaxMemory), "max-memory", "memory budget (e.g. 2GiB); above it new connections get 503 and /readyz says why (0: none)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "require connect tokens signed with HS256 and this secret")
	jwtKey := fs.String("jwt-public-key", "", "require connect tokens signed with RS256/ES256, verified with this PEM public key `file`")
	fs.StringVar(&c.APIKey, "api-key", "", "require \"Authorization: apikey <key>\" on the API (all but /healthz, /readyz)")
	fs.BoolVar(&c.APIInsecure, "api-insecure", false, "allow the API on a non-loopback address without --api-key")
	fs.Var((*prefixList)(&c.Conn.ProxyProtocol), "proxy-protocol", "comma-separated proxy addresses or CIDRs whose connections must start with a PROXY protocol v1/v2 header naming the client (empty: none)")
	fs.Var((*prefixList)(&c.TrustedProxies), "trusted-proxies", "comma-separated proxy addresses or CIDRs whose X-Forwarded-For names the client for per-IP limits (empty: the header is ignored)")

	// Environment first, so that explicit flags override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if c.Conn.SlowPolicy, err = wsconn.ParseSlowPolicy(*slow); err != nil {
		return nil, err
	}
	if c.Conn.Writer, err = wsconn.ParseWriterMode(*writer); err != nil {
		return nil, err
	}
	if err := o.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("log-level %q: %w", *level, err)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return nil, fmt.Errorf("log-format %q: want text or json", o.LogFormat)
	}
	if *jwtKey != "" {
		pem, err := os.ReadFile(*jwtKey)
		if err != nil {
			return nil, fmt.Errorf("jwt-public-key: %w", err)
		}
		c.JWTPublicKey = pem
	}
	if *origins != "" {
		c.AllowedOrigins = strings.Split(*origins, ",")
	}
	if c.Conn.SendQueue < 1 {
		return nil, fmt.Errorf("send-queue %d: must be at least 1", c.Conn.SendQueue)
	}
	if c.Conn.MaxMessage < 1 {
		return nil, fmt.Errorf("max-message %d: must be at least 1", c.Conn.MaxMessage)
	}
	return o, nil
}

// newLogger builds the slog logger the options ask for.
func (o *Options) newLogger(w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.LogLevel}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// byteSize is a flag.Value for byte counts written as 1048576, 512KiB, 64MiB
// or 2GiB (also KB/MB/GB as powers of 1000).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("bad size %q (want e.g. 1048576, 512MiB, 2GiB)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// prefixList is a flag.Value for a comma-separated list of addresses and
// CIDR prefixes, as prefixes.Parse reads it. Setting it replaces the whole
// list.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *prefixList) Set(s string) error {
	list, err := prefixes.Parse(s)
	if err != nil {
		return err
	}
	*l = list
	return nil
}
