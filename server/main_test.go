package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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

// startServer runs a server on 127.0.0.1:0 for the test's lifetime.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.APIListen = "127.0.0.1:0"
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	shutdownAtCleanup(t, s)
	return s
}

// shutdownAtCleanup shuts s down (started or not) when the test ends.
func shutdownAtCleanup(t testing.TB, s *Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// dial upgrades a client, failing the test on refusal.
func dial(t testing.TB, s *Server, target string) *wstest.Client {
	t.Helper()
	c, err := wstest.Dial(s.WSAddr().String(), target, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type publishReply struct {
	Seq        uint64 `json:"seq"`
	Epoch      string `json:"epoch"`
	Recipients int    `json:"recipients"`
}

// publish POSTs to the API and decodes the 200 reply.
func publish(t testing.TB, s *Server, topic string, data string) publishReply {
	t.Helper()
	status, body := postPublish(t, s, fmt.Sprintf(`{"topic":%q,"data":%s}`, topic, data))
	if status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	var r publishReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("publish reply %q: %v", body, err)
	}
	return r
}

func postPublish(t testing.TB, s *Server, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post("http://"+s.APIAddr().String()+"/api/publish", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// connCfg returns a connection config with a small max message.
func connCfg(maxMessage int) wsconn.Config {
	return wsconn.Config{MaxMessage: maxMessage}
}

// dialRaw opens a plain TCP connection to the WebSocket listener, closed at
// the end of the test.
func dialRaw(t testing.TB, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.WSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
