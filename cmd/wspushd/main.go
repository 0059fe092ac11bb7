// Command wspushd is the wspush WebSocket push server: clients connect to
// /ws and subscribe to topics; publishers POST to /api/publish on the API
// listener. Run "wspushd -h" for the flags; each also reads WSPUSH_<NAME>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"github.com/wspush/wspush/engine/redis"
	"github.com/wspush/wspush/internal/gctune"
	"github.com/wspush/wspush/server"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

// run is main without the process exit, so tests can drive it. It returns
// the exit code: 0 after a clean shutdown, 2 for bad flags, 1 otherwise.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("wspushd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts, err := ConfigureOptions(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "wspushd:", err)
		return 2
	}
	log := opts.newLogger(stderr)
	redis.SetLogger(log)
	gc := "GOGC"
	if opts.GCHeadroom > 0 && getenv("GOGC") == "" {
		tuner := gctune.Start(gctune.Config{Headroom: opts.GCHeadroom, IdleRelease: opts.GCIdleRelease})
		defer tuner.Stop()
		gc = "headroom " + strconv.Itoa(opts.GCHeadroom) + "%, idle release " + opts.GCIdleRelease.String()
	}
	srv, err := server.New(opts.Server, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("start failed", "err", err)
		_ = srv.Shutdown(ctx)
		return 1
	}
	cfg, cc := srv.Config(), srv.ConnConfig()
	log.Info("wspushd started",
		"node", cfg.NodeName, "broker", brokerForLog(cfg.Broker), "history_size", cfg.HistorySize, "history_ttl", cfg.HistoryTTL,
		"ws", srv.WSAddr().String(), "api", srv.APIAddr().String(), "reuseport", cfg.ReusePort,
		"max_conns", cfg.MaxConns, "max_conns_reason", srv.MaxConnsReason(),
		"pollers", srv.Pollers(), "workers", srv.Workers(), "gomaxprocs", runtime.GOMAXPROCS(0),
		"send_queue", cc.SendQueue, "slow_policy", cc.SlowPolicy.String(), "topic_policy", cfg.TopicPolicy.String(), "writer", cc.Writer.String(),
		"write_timeout", cc.WriteTimeout, "ping_interval", cc.PingInterval, "idle_timeout", cc.IdleTimeout, "read_timeout", cc.ReadTimeout,
		"max_message", cc.MaxMessage, "compression", cc.Compression, "client_publish", cfg.ClientPublish, "allowed_origins", cfg.AllowedOrigins,
		"pprof", cfg.Pprof, "demo", cfg.Demo, "shutdown_timeout", cfg.ShutdownTimeout, "gc", gc)

	if !srv.AuthEnabled() {
		log.Warn("AUTHENTICATION IS OFF: any client may connect and subscribe to any topic; set --jwt-secret or --jwt-public-key to require connect tokens")
	}
	if cfg.APIKey == "" {
		log.Warn("the publish API has no key: anyone who can reach " + srv.APIAddr().String() + " can publish; set --api-key")
	}
	l := cfg.Limits
	log.Info("limits", "max_conns_per_ip", l.MaxConnsPerIP, "upgrade_rate", l.UpgradeRate, "upgrade_rate_per_ip", l.UpgradeRatePerIP,
		"max_subscriptions", l.MaxSubscriptions, "max_topics", l.MaxTopics, "command_rate", l.CommandRate,
		"max_memory", l.MaxMemory, "handshake_timeout", cc.HandshakeTimeout, "drain_waves", cc.DrainWaves,
		"trusted_proxies", cfg.TrustedProxies, "proxy_protocol", cc.ProxyProtocol)

	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-sigCtx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete; remaining connections dropped", "err", err)
	}
	st := srv.Stats()
	log.Info("stopped", "delivered", st.Delivered.Load(), "dropped", st.Dropped(), "lost", st.LostClosed.Load())
	return 0
}

// brokerForLog is the broker URL without its password, or "embedded".
func brokerForLog(u string) string {
	if u == "" {
		return "embedded"
	}
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return p.Redacted()
}
