package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wspush/wspush/server"
	"github.com/wspush/wspush/wsconn"
)

// Options is everything wspushd takes from flags and WSPUSH_* variables.
type Options struct {
	Server    server.Config
	LogLevel  slog.Level
	LogFormat string // "text" or "json"
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
	fs.StringVar(&c.Listen, "listen", ":8080", "WebSocket listener `address`")
	fs.StringVar(&c.APIListen, "api-listen", "127.0.0.1:8081", "HTTP API listener `address` (publish, health, metrics)")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "most upgraded connections; beyond it upgrades get HTTP 503 (0: open-file limit minus headroom, negative: no cap)")
	fs.IntVar(&c.Conn.Pollers, "pollers", 0, "epoll instances (0: GOMAXPROCS/2, at least 1)")
	fs.IntVar(&c.Conn.Workers, "workers", 0, "dispatch worker pool size (0: 64 x GOMAXPROCS)")
	fs.IntVar(&c.Conn.SendQueue, "send-queue", 64, "messages queued per connection before the slow policy applies")
	slow := fs.String("slow-policy", "drop-oldest", "full-queue policy: drop-oldest, drop-newest or close (1008 \"slow consumer\")")
	writer := fs.String("writer", "on-demand", "writer goroutine lifetime: on-demand (exits when idle) or persistent")
	fs.DurationVar(&c.Conn.WriteTimeout, "write-timeout", 10*time.Second, "deadline for each socket write; a writer stuck longer closes the connection")
	fs.DurationVar(&c.Conn.PingInterval, "ping-interval", 25*time.Second, "how often silent connections are pinged (negative: never)")
	fs.DurationVar(&c.Conn.IdleTimeout, "idle-timeout", 60*time.Second, "close connections silent for this long (negative: never)")
	fs.IntVar(&c.Conn.MaxMessage, "max-message", 64<<10, "largest client message in bytes (and API publish body); larger closes with 1009")
	fs.BoolVar(&c.ClientPublish, "client-publish", false, "let clients publish with {\"op\":\"publish\"}")
	origins := fs.String("allowed-origins", "", "comma-separated Origin values allowed to upgrade (empty: any; \"*\": any)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the API listener")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "graceful shutdown budget on SIGINT/SIGTERM")

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
