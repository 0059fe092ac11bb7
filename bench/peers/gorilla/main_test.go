package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wspush/wspush/bench/peers/internal/peertest"
)

func TestProtocol(t *testing.T) { peertest.ProtocolSuite(t, run) }

// TestSlowClientDrops checks the chat-example policy: a client that stops
// reading fills its kernel buffers and then its 64-slot channel, after which
// it misses messages instead of stalling the hub or other clients.
func TestSlowClientDrops(t *testing.T) {
	s, err := start([]string{"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	p := &peertest.Peer{WS: s.ws.Addr(), API: s.api.Addr()}
	_ = p.MustDial(t, "firehose") // never reads
	fast := p.MustDial(t, "firehose")
	data := `"` + strings.Repeat("z", 64<<10) + `"`
	// Every round trip makes progress, so this is a bounded loop, not a poll.
	published := 0
	for {
		r := p.Publish(t, "firehose", data)
		published++
		if got := peertest.Read(t, fast); got.Seq != r.Seq {
			t.Fatalf("fast client got seq %d, want %d", got.Seq, r.Seq)
		}
		if r.Recipients == 1 {
			break
		}
		if published == 2000 {
			t.Fatalf("slow client still receiving after %d publishes of %d bytes", published, len(data))
		}
	}
	if d := s.hub.drops.Load(); d == 0 {
		t.Fatalf("recipients fell to 1 after %d publishes but no drop was counted", published)
	}
}

// TestProtocolCompressionOn: with -compression the protocol is the same
// for clients that do not offer the extension.
func TestProtocolCompressionOn(t *testing.T) { peertest.ProtocolSuite(t, run, "-compression") }

// TestCompression: a client that offers permessage-deflate gets it with
// no context takeover when the peer runs with -compression (and its
// deliveries come with RSV1 set, and inflate to the exact wire form),
// and is declined without the flag.
func TestCompression(t *testing.T) {
	for _, on := range []bool{true, false} {
		var extra []string
		if on {
			extra = []string{"-compression"}
		}
		p := peertest.Start(t, run, extra...)
		nc, br, ext := rawDial(t, p.WS, "zip")
		if got := strings.Contains(ext, "permessage-deflate") && strings.Contains(ext, "server_no_context_takeover"); got != on {
			t.Fatalf("compression %v: Sec-WebSocket-Extensions %q", on, ext)
		}
		data := `{"quotes":[` + strings.Repeat(`{"sym":"AAPL","bid":187.23,"ask":187.25},`, 50) + `{}]}`
		p.Publish(t, "zip", data)
		_ = nc.SetReadDeadline(time.Now().Add(peertest.Timeout))
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		if rsv1 := h[0]&0x40 != 0; rsv1 != on || h[0]&0x0f != 1 {
			t.Fatalf("compression %v: first frame byte %#x", on, h[0])
		}

		d := websocket.Dialer{HandshakeTimeout: peertest.Timeout, EnableCompression: true}
		c, resp, err := d.Dial("ws://"+p.WS+"/ws?topics=zip", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != on {
			t.Errorf("gorilla client: compression %v, extensions %q", on, resp.Header.Get("Sec-WebSocket-Extensions"))
		}
		r := p.Publish(t, "zip", data)
		if got := peertest.Read(t, c); got.Seq != r.Seq || string(got.Data) != data {
			t.Errorf("compression %v: got seq %d %d bytes, want seq %d %d bytes", on, got.Seq, len(got.Data), r.Seq, len(data))
		}
		_ = c.Close()
		_ = nc.Close()
	}
}

// rawDial upgrades a plain TCP connection subscribed to topic, offering
// permessage-deflate, and returns it with its reader (positioned at the
// first frame) and the response's Sec-WebSocket-Extensions.
func rawDial(t *testing.T, addr, topic string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, peertest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET /ws?topics=" + topic + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
	_ = nc.SetDeadline(time.Now().Add(peertest.Timeout))
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return nc, br, resp.Header.Get("Sec-WebSocket-Extensions")
}
