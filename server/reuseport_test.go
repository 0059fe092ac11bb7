package server

import (
	"errors"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/wstest"
)

// newOn builds a server whose WebSocket listener is ws (the API on a free
// port) without starting it; the test shuts it down, started or not.
func newOn(t *testing.T, ws string, reuse bool) *Server {
	t.Helper()
	s, err := New(Config{Listen: ws, APIListen: "127.0.0.1:0", ReusePort: reuse, ShutdownTimeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	shutdownAtCleanup(t, s)
	return s
}

// sharedConns is how many connections the shared-port case opens: the
// kernel hashes each 4-tuple to one of the two listeners, so the chance
// that one of them gets none is 2^-(sharedConns-1).
const sharedConns = 64

func TestReusePort(t *testing.T) {
	tests := []struct {
		name          string
		first, second bool // ReusePort of the first and second server
		wantShared    bool
	}{
		{name: "both set: both accept", first: true, second: true, wantShared: true},
		{name: "second without: EADDRINUSE", first: true, second: false},
		{name: "neither: EADDRINUSE", first: false, second: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newOn(t, "127.0.0.1:0", tc.first)
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			addr := a.WSAddr().String()
			b := newOn(t, addr, tc.second)
			err := b.Start()
			if !tc.wantShared {
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Fatalf("second Start on %s = %v, want EADDRINUSE", addr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("second Start on %s: %v", addr, err)
			}
			// Every connection subscribes at connect, before its 101, so
			// once all are upgraded each server's publish counts its own.
			for range sharedConns {
				c, err := wstest.Dial(addr, "/ws?topics=shared", nil)
				if err != nil {
					t.Fatalf("dial %s: %v", addr, err)
				}
				t.Cleanup(func() { c.Close() })
			}
			ra, rb := publish(t, a, "shared", "1").Recipients, publish(t, b, "shared", "1").Recipients
			if ra+rb != sharedConns || ra == 0 || rb == 0 {
				t.Fatalf("recipients %d on the first and %d on the second server, want %d in all and some on each", ra, rb, sharedConns)
			}
		})
	}
}
