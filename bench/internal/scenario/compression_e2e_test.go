package scenario

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wspush/wspush/server"
	"github.com/wspush/wspush/wsconn"
)

// TestBroadcastCompression broadcasts realistic JSON to clients in two
// processes that negotiate permessage-deflate with a server that has it
// on: every delivery arrives once, in order, compressed, in fewer bytes
// on the wire than it has; then to clients that do not ask, plainly.
func TestBroadcastCompression(t *testing.T) {
	s := startServerWith(t, server.Config{Conn: wsconn.Config{Compression: true}})
	for _, compress := range []bool{true, false} {
		cfg := BroadcastConfig{Common: common(t, s, 30, 2), Messages: 10, Size: 2048, Publishers: 1, Payload: "json"}
		cfg.Compression = compress
		rep, err := Broadcast(context.Background(), cfg)
		assertExact(t, cfg, err, rep.Checks)
		c := rep.Cost
		if c == nil || c.Deliveries != 300 || c.Compression != compress || c.ServerCPUSeconds < 0 {
			t.Fatalf("compression %v: cost %+v", compress, c)
		}
		if c.MessageBytesPerDelivery < 2048 {
			t.Errorf("compression %v: %.0f message bytes per delivery, want the 2048-byte data and its envelope", compress, c.MessageBytesPerDelivery)
		}
		switch {
		case compress && (c.Compressed != 300 || c.WireBytesPerDelivery > c.MessageBytesPerDelivery/1.5):
			t.Errorf("compressed: %d compressed, %.0f wire bytes per delivery for %.0f message bytes", c.Compressed, c.WireBytesPerDelivery, c.MessageBytesPerDelivery)
		case !compress && (c.Compressed != 0 || c.WireBytesPerDelivery < c.MessageBytesPerDelivery):
			t.Errorf("plain: %d compressed, %.0f wire bytes per delivery for %.0f message bytes", c.Compressed, c.WireBytesPerDelivery, c.MessageBytesPerDelivery)
		}
	}
}

// TestCompressionDeclinedFails: clients that ask for compression from a
// server without it stop the run with an error that says so, in process
// and from child processes.
func TestCompressionDeclinedFails(t *testing.T) {
	s := startServer(t)
	for _, procs := range []int{1, 2} {
		cfg := BroadcastConfig{Common: common(t, s, 10, procs), Messages: 1, Size: 512, Publishers: 1}
		cfg.Compression = true
		_, err := Broadcast(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "declined permessage-deflate") {
			t.Errorf("procs %d: %v, want the server's decline", procs, err)
		}
	}
}

// TestConnectAndChurnCompression: idle connections and churn cycles that
// negotiated compression come up and close like the others.
func TestConnectAndChurnCompression(t *testing.T) {
	s := startServerWith(t, server.Config{Conn: wsconn.Config{Compression: true}})
	cc := ConnectConfig{Common: common(t, s, 20, 1), Baseline: true}
	cc.Compression = true
	rep, err := Connect(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clients.Up != 20 || rep.Clients.Failed != 0 {
		t.Errorf("clients %+v", rep.Clients)
	}
	ch := ChurnConfig{Common: common(t, s, 0, 1), Rate: 200, Duration: 100 * time.Millisecond, Concurrency: 4, SettleTimeout: 20 * time.Second}
	ch.Settle, ch.Compression = time.Millisecond, true
	rep, err = Churn(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Churn.Cycles == 0 || rep.Churn.Failed != 0 {
		t.Errorf("churn %+v failures %v", rep.Churn, rep.Clients.Failures)
	}
}

func TestRecoverRejectsCompression(t *testing.T) {
	cfg := RecoverConfig{Common: Common{WS: "127.0.0.1:1", API: "127.0.0.1:2", Topics: 1, Procs: 1, Compression: true}, Messages: 1, Publishers: 1}
	if _, err := Recover(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "compression") {
		t.Fatalf("%v", err)
	}
}
