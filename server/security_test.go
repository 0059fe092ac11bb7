package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/wsconn"
)

func token(t *testing.T, method jwt.SigningMethod, key any, topics []string, exp, nbf time.Time) string {
	t.Helper()
	c := claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "user-1", ExpiresAt: jwt.NewNumericDate(exp)}, Topics: topics}
	if !nbf.IsZero() {
		c.NotBefore = jwt.NewNumericDate(nbf)
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// dialStatus dials and returns 101 or the refusal status.
func dialStatus(t *testing.T, s *Server, target string, h http.Header) int {
	t.Helper()
	c, err := wstest.Dial(s.WSAddr().String(), target, h)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		return 101
	}
	if !errors.Is(err, wstest.ErrStatus) {
		t.Fatalf("dial %s: %v", target, err)
	}
	return c.Resp.StatusCode
}

func TestJWTConnect(t *testing.T) {
	secret := "s3cret"
	hs := func(topics []string, exp, nbf time.Time) string {
		return token(t, jwt.SigningMethodHS256, []byte(secret), topics, exp, nbf)
	}
	now := time.Now()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hsSrv := startServer(t, Config{JWTSecret: secret})
	rsSrv := startServer(t, Config{JWTPublicKey: pemPublic(t, &rsaKey.PublicKey)})
	esSrv := startServer(t, Config{JWTPublicKey: pemPublic(t, &ecKey.PublicKey)})
	tests := []struct {
		name   string
		s      *Server
		target string
		header http.Header
		status int
	}{
		{"no token", hsSrv, "/ws", nil, 401},
		{"garbage token", hsSrv, "/ws?token=abc", nil, 401},
		{"wrong secret", hsSrv, "/ws?token=" + token(t, jwt.SigningMethodHS256, []byte("other"), nil, now.Add(time.Hour), time.Time{}), nil, 401},
		{"expired", hsSrv, "/ws?token=" + hs(nil, now.Add(-time.Hour), time.Time{}), nil, 401},
		{"not yet valid", hsSrv, "/ws?token=" + hs(nil, now.Add(time.Hour), now.Add(time.Hour)), nil, 401},
		{"expired within leeway", hsSrv, "/ws?token=" + hs(nil, now.Add(-5*time.Second), time.Time{}), nil, 101},
		{"valid in query", hsSrv, "/ws?token=" + hs([]string{"a"}, now.Add(time.Hour), time.Time{}) + "&topics=a", nil, 101},
		{"valid bearer", hsSrv, "/ws?topics=a", http.Header{"Authorization": {"Bearer " + hs([]string{"a"}, now.Add(time.Hour), time.Time{})}}, 101},
		{"topic outside claim", hsSrv, "/ws?topics=b&token=" + hs([]string{"a"}, now.Add(time.Hour), time.Time{}), nil, 403},
		{"prefix claim", hsSrv, "/ws?topics=news.eu,news.us&token=" + hs([]string{"news.*"}, now.Add(time.Hour), time.Time{}), nil, 101},
		{"prefix claim does not cover sibling", hsSrv, "/ws?topics=newsletter&token=" + hs([]string{"news.*"}, now.Add(time.Hour), time.Time{}), nil, 403},
		{"alg confusion: HS256 token on RSA server", rsSrv, "/ws?token=" + hs(nil, now.Add(time.Hour), time.Time{}), nil, 401},
		{"RS256", rsSrv, "/ws?token=" + token(t, jwt.SigningMethodRS256, rsaKey, nil, now.Add(time.Hour), time.Time{}), nil, 101},
		{"ES256", esSrv, "/ws?token=" + token(t, jwt.SigningMethodES256, ecKey, nil, now.Add(time.Hour), time.Time{}), nil, 101},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dialStatus(t, tc.s, tc.target, tc.header); got != tc.status {
				t.Fatalf("status = %d, want %d", got, tc.status)
			}
		})
	}
}

func TestJWTSubscribeOutsideClaimIsForbidden(t *testing.T) {
	s := startServer(t, Config{JWTSecret: "k"})
	tok := token(t, jwt.SigningMethodHS256, []byte("k"), []string{"ok", "p.*"}, time.Now().Add(time.Hour), time.Time{})
	c := dial(t, s, "/ws?token="+tok)
	for _, tc := range []struct {
		cmd, op, code string
	}{
		{`{"op":"subscribe","topics":["ok"],"id":1}`, "ack", ""},
		{`{"op":"subscribe","topics":["p.x"],"id":2}`, "ack", ""},
		{`{"op":"subscribe","topics":["ok","nope"],"id":3}`, "error", "forbidden"},
	} {
		if err := c.WriteText(tc.cmd); err != nil {
			t.Fatal(err)
		}
		if r := readReply(t, c); r.Op != tc.op || r.Code != tc.code {
			t.Fatalf("%s → %+v, want %s %s", tc.cmd, r, tc.op, tc.code)
		}
	}
}

func TestAPIKey(t *testing.T) {
	s := startServer(t, Config{APIKey: "k1"})
	api := "http://" + s.APIAddr().String()
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"publish without key", "POST", "/api/publish", "", 401},
		{"publish with wrong key", "POST", "/api/publish", "apikey k2", 401},
		{"publish with key", "POST", "/api/publish", "apikey k1", 200},
		{"metrics without key", "GET", "/metrics", "", 401},
		{"healthz without key", "GET", "/healthz", "", 200},
		{"readyz without key", "GET", "/readyz", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, api+tc.path, strings.NewReader(`{"topic":"a","data":1}`))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestAPIRefusesPublicBindWithoutKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"public without key", Config{APIListen: "0.0.0.0:0"}, true},
		{"public with key", Config{APIListen: "0.0.0.0:0", APIKey: "k"}, false},
		{"public insecure", Config{APIListen: "0.0.0.0:0", APIInsecure: true}, false},
		{"loopback without key", Config{APIListen: "127.0.0.1:0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Listen = "127.0.0.1:0"
			s, err := New(tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start()
			defer s.Shutdown(t.Context())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Start err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("connections per IP", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxConnsPerIP: 2}})
		for i, want := range []int{101, 101, 429} {
			if got := dialStatus(t, s, "/ws", nil); got != want {
				t.Fatalf("dial %d: %d, want %d", i, got, want)
			}
		}
	})
	t.Run("per-IP count is released on close", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxConnsPerIP: 1}})
		c := dial(t, s, "/ws")
		c.Close()
		testutil.CheckFor(t, readWait, 10*time.Millisecond, func() error {
			if got := dialStatus(t, s, "/ws", nil); got != 101 {
				return fmt.Errorf("status %d", got)
			}
			return nil
		})
	})
	t.Run("per-IP count behind a trusted proxy", func(t *testing.T) {
		// The test client is the proxy (127.0.0.1); X-Forwarded-For names
		// the clients behind it.
		s := startServer(t, Config{Limits: Limits{MaxConnsPerIP: 1},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
		for i, tc := range []struct {
			header http.Header
			want   int
		}{
			{xff("203.0.113.7"), 101},
			{xff("203.0.113.8"), 101},
			{xff("203.0.113.7"), 429},                 // same client again
			{xff("203.0.113.7, 127.0.0.9"), 429},      // through a second trusted hop
			{xff("198.51.100.1, 203.0.113.8"), 429},   // a forged left entry changes nothing
			{nil, 101},                                // the proxy's own connection
			{xff("unknown, 203.0.113.9"), 101},        // left of the client is never read
			{xff("203.0.113.9, not-an-address"), 429}, // garbage: counted as the proxy
		} {
			if got := dialStatus(t, s, "/ws", tc.header); got != tc.want {
				t.Fatalf("dial %d (%v): %d, want %d", i, tc.header, got, tc.want)
			}
		}
	})
	t.Run("X-Forwarded-For ignored from an untrusted peer", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxConnsPerIP: 1},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		for i, want := range []int{101, 429} {
			h := http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i+1)}}
			if got := dialStatus(t, s, "/ws", h); got != want {
				t.Fatalf("dial %d: %d, want %d", i, got, want)
			}
		}
	})
	t.Run("upgrade rate", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{UpgradeRate: 1}})
		if a, b := dialStatus(t, s, "/ws", nil), dialStatus(t, s, "/ws", nil); a != 101 || b != 429 {
			t.Fatalf("statuses %d %d, want 101 429", a, b)
		}
	})
	t.Run("upgrade rate per IP", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{UpgradeRatePerIP: 1}})
		if a, b := dialStatus(t, s, "/ws", nil), dialStatus(t, s, "/ws", nil); a != 101 || b != 429 {
			t.Fatalf("statuses %d %d, want 101 429", a, b)
		}
	})
	t.Run("subscriptions per connection", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxSubscriptions: 2}})
		if got := dialStatus(t, s, "/ws?topics=a,b,c", nil); got != 400 {
			t.Fatalf("3 topics at connect: %d, want 400", got)
		}
		c := dial(t, s, "/ws?topics=a,b")
		c.WriteText(`{"op":"subscribe","topics":["c"],"id":1}`)
		if r := readReply(t, c); r.Op != "error" || r.Code != "limit" {
			t.Fatalf("third subscription: %+v, want error limit", r)
		}
	})
	t.Run("topics in total", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxTopics: 2}})
		c := dial(t, s, "/ws?topics=t1,t2")
		if got := dialStatus(t, s, "/ws?topics=t3", nil); got != 503 {
			t.Fatalf("subscribing a third topic at connect: %d, want 503", got)
		}
		c.WriteText(`{"op":"subscribe","topics":["t3"],"id":1}`)
		if r := readReply(t, c); r.Op != "error" || r.Code != "limit" {
			t.Fatalf("subscribing a third topic: %+v, want error limit", r)
		}
		// A publish creates no topic, so the cap never refuses one.
		if r := publish(t, s, "t3", "1"); r.Recipients != 0 {
			t.Fatalf("publish to t3 = %+v, want no recipients", r)
		}
		if r := publish(t, s, "t1", "2"); r.Recipients != 1 { // existing topics still work
			t.Fatalf("publish to t1 = %+v, want 1 recipient", r)
		}
	})
	t.Run("commands per second", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{CommandRate: 1}})
		c := dial(t, s, "/ws")
		limited := false
		for i := range 5 {
			c.WriteText(fmt.Sprintf(`{"op":"subscribe","topics":["x"],"id":%d}`, i))
			if r := readReply(t, c); r.Code == "limit" {
				limited = true
			}
		}
		if !limited {
			t.Fatal("5 commands at once at 1/s (burst 2) were all accepted")
		}
	})
	t.Run("memory budget", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxMemory: 1}})
		testutil.CheckFor(t, readWait, 10*time.Millisecond, func() error {
			if !s.memory.over.Load() {
				return errors.New("not sampled yet")
			}
			return nil
		})
		if got := dialStatus(t, s, "/ws", nil); got != 503 {
			t.Fatalf("upgrade over budget: %d, want 503", got)
		}
		if body := get(t, "http://"+s.APIAddr().String()+"/readyz", 503); !strings.Contains(body, "memory budget") {
			t.Fatalf("readyz body %q does not say why", body)
		}
	})
}

// TestStalledHandshakes: 1,000 clients that never finish their upgrade
// request (one sends it byte by byte) hold no worker, do not stop a real
// client, and are dropped after the handshake timeout.
func TestStalledHandshakes(t *testing.T) {
	s := startServer(t, Config{Conn: wsconn.Config{HandshakeTimeout: 4 * time.Second, SweepInterval: 50 * time.Millisecond, Workers: 4}})
	for range 1000 {
		c := dialRaw(t, s)
		c.Write([]byte("GET /ws HTTP/1.1\r\nHo"))
	}
	trickle := dialRaw(t, s)
	trickle.Write([]byte("G"))
	real := dial(t, s, "/ws")
	real.WriteText(`{"op":"subscribe","topics":["r"],"id":1}`)
	if r := readReply(t, real); r.Op != "ack" {
		t.Fatalf("real client: %+v", r)
	}
	// The workers may still be finishing the last partial requests; they
	// must all come free while every stalled handshake is still held.
	testutil.CheckFor(t, readWait, 5*time.Millisecond, func() error {
		if busy := s.ws.WorkersBusy(); busy != 0 {
			return fmt.Errorf("%d workers busy while 1,001 handshakes stall", busy)
		}
		return nil
	})
	if n := s.Stats().Open.Load(); n != 1002 {
		t.Fatalf("%d sockets open when the workers came free, want 1,002 (the stalled ones still held)", n)
	}
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := s.Stats().Open.Load(); n != 1 {
			return fmt.Errorf("%d sockets held, want 1 (the real client)", n)
		}
		return nil
	})
	// The sweeper counts each timeout right after ending the connection:
	// the last counts may trail the closes by a moment.
	testutil.CheckFor(t, readWait, 20*time.Millisecond, func() error {
		body := get(t, "http://"+s.APIAddr().String()+"/metrics", 200)
		if !strings.Contains(body, `wspush_upgrade_failures_total{reason="timeout"} 1001`) {
			return fmt.Errorf("timeouts not counted:\n%s", grepLines(body, "upgrade_failures"))
		}
		return nil
	})
}

// TestDrainWaves: shutdown closes clients in waves, not all at once.
func TestDrainWaves(t *testing.T) {
	s := startServer(t, Config{Conn: wsconn.Config{DrainWaves: 4}})
	var cs []*wstest.Client
	for range 40 {
		cs = append(cs, dial(t, s, "/ws"))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	go s.Shutdown(ctx)
	// Each client waits on its own goroutine, so that the time taken is the
	// arrival of its close, not the moment the test got round to it.
	arrived := make([]time.Time, len(cs))
	errs := make(chan error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cf, err := c.ExpectClose(5 * time.Second)
			if err != nil || cf.Code != 1001 {
				errs <- fmt.Errorf("close = %v, %v", cf, err)
				return
			}
			arrived[i] = time.Now()
			c.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	first, last := arrived[0], arrived[0]
	for _, a := range arrived {
		if a.Before(first) {
			first = a
		}
		if a.After(last) {
			last = a
		}
	}
	// 4 waves over the first half of 2 s: at least 3 gaps of ≥ 200 ms apart.
	if spread := last.Sub(first); spread < 500*time.Millisecond {
		t.Fatalf("closes spread over %v, want waves (≥ 500ms)", spread)
	}
}
