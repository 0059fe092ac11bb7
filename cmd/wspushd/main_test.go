package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/gctune"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/server"
	"github.com/wspush/wspush/wsconn"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigureOptions(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, o *Options)
		err   string
	}{
		{name: "defaults", check: func(t *testing.T, o *Options) {
			c, l := o.Server, o.Server.Limits
			if c.Listen != server.DefaultListen || c.APIListen != server.DefaultAPIListen || c.Conn.SendQueue != wsconn.DefaultSendQueue ||
				c.Conn.SlowPolicy != wsconn.DropOldest || c.Conn.Writer != wsconn.WriterOnDemand ||
				c.Conn.WriteTimeout != wsconn.DefaultWriteTimeout || c.Conn.PingInterval != wsconn.DefaultPingInterval ||
				c.Conn.IdleTimeout != wsconn.DefaultIdleTimeout || c.Conn.ReadTimeout != wsconn.DefaultReadTimeout ||
				c.Conn.MaxMessage != wsconn.DefaultMaxMessage || c.ClientPublish || c.Pprof || c.Demo ||
				c.ShutdownTimeout != server.DefaultShutdownTimeout || c.MaxConns != 0 || len(c.AllowedOrigins) != 0 ||
				c.Conn.DrainWaves != wsconn.DefaultDrainWaves || c.Conn.HandshakeTimeout != wsconn.DefaultHandshakeTimeout ||
				l.MaxSubscriptions != server.DefaultMaxSubscriptions || l.MaxTopics != server.DefaultMaxTopics ||
				l.CommandRate != server.DefaultCommandRate ||
				o.LogFormat != "text" || len(c.TrustedProxies) != 0 || len(c.Conn.ProxyProtocol) != 0 {
				t.Fatalf("defaults wrong: %+v", o)
			}
		}},
		{name: "flags", args: []string{"--listen", "127.0.0.1:1", "--send-queue", "8", "--slow-policy", "close",
			"--writer", "persistent", "--client-publish", "--allowed-origins", "https://a.example, https://b.example",
			"--max-conns", "5", "--log-format", "json", "--log-level", "debug"},
			check: func(t *testing.T, o *Options) {
				c := o.Server
				if c.Listen != "127.0.0.1:1" || c.Conn.SendQueue != 8 || c.Conn.SlowPolicy != wsconn.CloseSlow ||
					c.Conn.Writer != wsconn.WriterPersistent || !c.ClientPublish || c.MaxConns != 5 ||
					len(c.AllowedOrigins) != 2 || o.LogFormat != "json" || o.LogLevel.String() != "DEBUG" {
					t.Fatalf("flags not applied: %+v", o)
				}
			}},
		{name: "env override", env: map[string]string{"WSPUSH_SEND_QUEUE": "128", "WSPUSH_SLOW_POLICY": "drop-newest", "WSPUSH_CLIENT_PUBLISH": "true"},
			check: func(t *testing.T, o *Options) {
				if o.Server.Conn.SendQueue != 128 || o.Server.Conn.SlowPolicy != wsconn.DropNewest || !o.Server.ClientPublish {
					t.Fatalf("env not applied: %+v", o.Server)
				}
			}},
		{name: "flag beats env", args: []string{"--send-queue", "7"}, env: map[string]string{"WSPUSH_SEND_QUEUE": "128"},
			check: func(t *testing.T, o *Options) {
				if o.Server.Conn.SendQueue != 7 {
					t.Fatalf("send queue = %d, want the flag's 7", o.Server.Conn.SendQueue)
				}
			}},
		{name: "trusted proxies", args: []string{"--trusted-proxies", "10.0.0.7, 192.168.1.9/16,fd00::/8"},
			check: func(t *testing.T, o *Options) {
				got := fmt.Sprint(o.Server.TrustedProxies)
				if want := "[10.0.0.7/32 192.168.0.0/16 fd00::/8]"; got != want {
					t.Fatalf("trusted proxies = %s, want %s", got, want)
				}
			}},
		{name: "trusted proxies from env", env: map[string]string{"WSPUSH_TRUSTED_PROXIES": "127.0.0.1"},
			check: func(t *testing.T, o *Options) {
				if got := fmt.Sprint(o.Server.TrustedProxies); got != "[127.0.0.1/32]" {
					t.Fatalf("trusted proxies = %s", got)
				}
			}},
		{name: "proxy protocol peers", args: []string{"--proxy-protocol", "10.0.0.0/8"},
			check: func(t *testing.T, o *Options) {
				if got := fmt.Sprint(o.Server.Conn.ProxyProtocol); got != "[10.0.0.0/8]" {
					t.Fatalf("proxy protocol = %s", got)
				}
			}},
		{name: "reuseport flag", args: []string{"--reuseport"},
			check: func(t *testing.T, o *Options) {
				if !o.Server.ReusePort {
					t.Fatal("--reuseport not applied")
				}
			}},
		{name: "demo flag", args: []string{"--demo"},
			check: func(t *testing.T, o *Options) {
				if !o.Server.Demo {
					t.Fatal("--demo not applied")
				}
			}},
		{name: "reuseport from env", env: map[string]string{"WSPUSH_REUSEPORT": "true"},
			check: func(t *testing.T, o *Options) {
				if !o.Server.ReusePort {
					t.Fatal("WSPUSH_REUSEPORT not applied")
				}
			}},
		{name: "bad proxy protocol peer", args: []string{"--proxy-protocol", "ten"}, err: "bad address or CIDR"},
		{name: "bad trusted proxy", args: []string{"--trusted-proxies", "10.0.0.300"}, err: "bad address or CIDR"},
		{name: "bad policy", args: []string{"--slow-policy", "drop-all"}, err: "slow policy"},
		{name: "topic policy", args: []string{"--topic-policy", "prices.*=conflate, chat.*=close"},
			check: func(t *testing.T, o *Options) {
				if got := o.Server.TopicPolicy.String(); got != "prices.*=conflate,chat.*=close" {
					t.Fatalf("topic policy = %q", got)
				}
			}},
		{name: "topic policy from env", env: map[string]string{"WSPUSH_TOPIC_POLICY": "scores.*=conflate"},
			check: func(t *testing.T, o *Options) {
				if got := o.Server.TopicPolicy.String(); got != "scores.*=conflate" {
					t.Fatalf("topic policy = %q", got)
				}
			}},
		{name: "topic policy flag beats env", args: []string{"--topic-policy", "a=close"}, env: map[string]string{"WSPUSH_TOPIC_POLICY": "b=conflate"},
			check: func(t *testing.T, o *Options) {
				if got := o.Server.TopicPolicy.String(); got != "a=close" {
					t.Fatalf("topic policy = %q, want the flag's", got)
				}
			}},
		{name: "bad topic policy", args: []string{"--topic-policy", "prices.*=conflate,chat.*=keep"}, err: `entry "chat.*=keep"`},
		{name: "bad topic policy in env", env: map[string]string{"WSPUSH_TOPIC_POLICY": "@*=close"}, err: `WSPUSH_TOPIC_POLICY`},
		{name: "bad writer", args: []string{"--writer", "sometimes"}, err: "writer mode"},
		{name: "bad env", env: map[string]string{"WSPUSH_WRITE_TIMEOUT": "soon"}, err: "WSPUSH_WRITE_TIMEOUT"},
		{name: "read timeout", args: []string{"--read-timeout", "5s"},
			check: func(t *testing.T, o *Options) {
				if o.Server.Conn.ReadTimeout != 5*time.Second {
					t.Fatalf("read timeout = %v, want 5s", o.Server.Conn.ReadTimeout)
				}
			}},
		{name: "read timeout never", env: map[string]string{"WSPUSH_READ_TIMEOUT": "-1s"},
			check: func(t *testing.T, o *Options) {
				if o.Server.Conn.ReadTimeout >= 0 {
					t.Fatalf("read timeout = %v, want negative (never)", o.Server.Conn.ReadTimeout)
				}
			}},
		{name: "zero queue", args: []string{"--send-queue", "0"}, err: "send-queue"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, err: "log-format"},
		{name: "stray argument", args: []string{"extra"}, err: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("wspushd", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, err := ConfigureOptions(fs, tc.args, env(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

// flagDefaults is every flag's default as -h must show it, taken from the
// package that owns it. A new flag must be added here.
var flagDefaults = map[string]string{
	"listen":               server.DefaultListen,
	"api-listen":           server.DefaultAPIListen,
	"reuseport":            "false",
	"max-conns":            "0",
	"pollers":              "0",
	"workers":              "0",
	"send-queue":           fmt.Sprint(wsconn.DefaultSendQueue),
	"slow-policy":          wsconn.DropOldest.String(),
	"topic-policy":         "",
	"writer":               wsconn.WriterOnDemand.String(),
	"write-timeout":        wsconn.DefaultWriteTimeout.String(),
	"ping-interval":        wsconn.DefaultPingInterval.String(),
	"idle-timeout":         wsconn.DefaultIdleTimeout.String(),
	"read-timeout":         wsconn.DefaultReadTimeout.String(),
	"max-message":          fmt.Sprint(wsconn.DefaultMaxMessage),
	"client-publish":       "false",
	"compression":          "false",
	"compression-min-size": "256",
	"allowed-origins":      "",
	"pprof":                "false",
	"demo":                 "false",
	"log-level":            "info",
	"log-format":           "text",
	"shutdown-timeout":     server.DefaultShutdownTimeout.String(),
	"drain-waves":          fmt.Sprint(wsconn.DefaultDrainWaves),
	"handshake-timeout":    wsconn.DefaultHandshakeTimeout.String(),
	"max-conns-per-ip":     "0",
	"upgrade-rate":         "0",
	"upgrade-rate-per-ip":  "0",
	"max-subscriptions":    fmt.Sprint(server.DefaultMaxSubscriptions),
	"max-topics":           fmt.Sprint(server.DefaultMaxTopics),
	"command-rate":         fmt.Sprint(server.DefaultCommandRate),
	"max-memory":           "0",
	"jwt-secret":           "",
	"jwt-public-key":       "",
	"api-key":              "",
	"api-insecure":         "false",
	"proxy-protocol":       "",
	"trusted-proxies":      "",
	"history-size":         "0",
	"broker":               "",
	"node-name":            "",
	"history-ttl":          server.DefaultHistoryTTL.String(),
	"engine-timeout":       server.DefaultEngineTimeout.String(),
	"latency-sample":       server.DefaultLatencySample.String(),
	"gc-headroom":          strconv.Itoa(gctune.DefaultHeadroom),
	"gc-idle-release":      gctune.DefaultIdleRelease.String(),
}

// helpBlocks splits flag.PrintDefaults output into one block per flag.
func helpBlocks(out string) map[string]string {
	blocks := map[string]string{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			name, _, _ = strings.Cut(rest, " ")
		}
		if name != "" {
			blocks[name] += line + "\n"
		}
	}
	return blocks
}

// TestHelpListsEveryFlagWithDefault walks every flag: each has help text
// in -h, its default is the owning package's, and -h shows that default.
func TestHelpListsEveryFlagWithDefault(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, env(nil), &out); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	blocks := helpBlocks(out.String())
	fs := flag.NewFlagSet("wspushd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := ConfigureOptions(fs, nil, env(nil)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		seen[f.Name] = true
		want, ok := flagDefaults[f.Name]
		if !ok {
			t.Errorf("flag --%s is not in flagDefaults: add its default (and a README row)", f.Name)
			return
		}
		if f.DefValue != want {
			t.Errorf("flag --%s defaults to %q, want the package default %q", f.Name, f.DefValue, want)
		}
		block := blocks[f.Name]
		if strings.TrimSpace(f.Usage) == "" || !strings.Contains(block, "\n    \t") {
			t.Errorf("flag --%s has no help text in -h:\n%s", f.Name, block)
		}
		switch want {
		case "", "0", "false", "0s": // PrintDefaults omits zero defaults
		default:
			if !strings.Contains(block, "(default "+want+")") && !strings.Contains(block, `(default "`+want+`")`) {
				t.Errorf("-h does not show --%s's default %q:\n%s", f.Name, want, block)
			}
		}
	})
	for name := range flagDefaults {
		if !seen[name] {
			t.Errorf("flagDefaults lists --%s, which is not a flag", name)
		}
	}
}

// TestREADMEListsEveryFlag: the README's flags table has a row for every
// flag.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("wspushd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := ConfigureOptions(fs, nil, env(nil)); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(readme, []byte("| `--"+f.Name+"` |")) {
			t.Errorf("README's flags table has no row for --%s", f.Name)
		}
	})
}

// TestRunServesAndShutsDownCleanly starts the real binary's run on port 0,
// publishes to a client, cancels (as SIGTERM does) and expects exit 0 with
// the client closed with 1001.
func TestRunServesAndShutsDownCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testutil.SyncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--shutdown-timeout", "5s"}, env(nil), &logs)
	}()
	addrs := regexp.MustCompile(`ws=(\S+) api=(\S+)`)
	var ws, api string
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		m := addrs.FindStringSubmatch(logs.String())
		if m == nil {
			return errors.New("no start-up line yet")
		}
		ws, api = m[1], m[2]
		return nil
	})
	for _, want := range []string{"max_conns_reason=", "open-file limit", "send_queue=64", "slow_policy=drop-oldest", "writer=on-demand"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs.String())
		}
	}
	c, err := wstest.Dial(ws, "/ws?topics=t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := http.Post("http://"+api+"/api/publish", "application/json", strings.NewReader(`{"topic":"t","data":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, err := c.ReadText(5 * time.Second); err != nil || got != `{"topic":"t","seq":1,"data":1}` {
		t.Fatalf("delivery %q, %v", got, err)
	}
	cancel()
	cf, err := c.ExpectClose(5 * time.Second)
	if err != nil || cf.Code != 1001 {
		t.Fatalf("close = %v, %v; want 1001", cf, err)
	}
	c.Close()
	select {
	case got := <-code:
		if got != 0 {
			t.Fatalf("exit code %d, want 0\n%s", got, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
