package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
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
			c := o.Server
			if c.Listen != ":8080" || c.APIListen != "127.0.0.1:8081" || c.Conn.SendQueue != 64 ||
				c.Conn.SlowPolicy != wsconn.DropOldest || c.Conn.Writer != wsconn.WriterOnDemand ||
				c.Conn.WriteTimeout != 10*time.Second || c.Conn.PingInterval != 25*time.Second ||
				c.Conn.IdleTimeout != 60*time.Second || c.Conn.MaxMessage != 65536 || c.ClientPublish ||
				c.Pprof || c.ShutdownTimeout != 10*time.Second || c.MaxConns != 0 || len(c.AllowedOrigins) != 0 ||
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
		{name: "bad proxy protocol peer", args: []string{"--proxy-protocol", "ten"}, err: "bad address or CIDR"},
		{name: "bad trusted proxy", args: []string{"--trusted-proxies", "10.0.0.300"}, err: "bad address or CIDR"},
		{name: "bad policy", args: []string{"--slow-policy", "drop-all"}, err: "slow policy"},
		{name: "bad writer", args: []string{"--writer", "sometimes"}, err: "writer mode"},
		{name: "bad env", env: map[string]string{"WSPUSH_WRITE_TIMEOUT": "soon"}, err: "WSPUSH_WRITE_TIMEOUT"},
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

func TestHelpListsEveryFlagWithDefault(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, env(nil), &out); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{"-listen", `(default ":8080")`, "-api-listen", "-max-conns", "-pollers", "-workers",
		"-send-queue", "(default 64)", "-slow-policy", "-writer", "-write-timeout", "-ping-interval", "-idle-timeout",
		"-max-message", "-client-publish", "-allowed-origins", "-log-level", "-log-format", "-shutdown-timeout", "-pprof"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q", want)
		}
	}
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
