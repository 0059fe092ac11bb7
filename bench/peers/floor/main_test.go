package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/bench/peers/internal/peertest"
)

func TestProtocol(t *testing.T) { peertest.ProtocolSuite(t, run) }

// TestProtocolManyLoops spreads connections over more loops than cores.
func TestProtocolManyLoops(t *testing.T) { peertest.ProtocolSuite(t, run, "-loops", "3") }

// TestProtocolWritePerDelivery runs the suite in the other delivery mode.
func TestProtocolWritePerDelivery(t *testing.T) {
	peertest.ProtocolSuite(t, run, "-mode", modeWritePerDelivery, "-loops", "3")
}

// modes are both delivery modes, for tests that run in each.
var modes = []string{modeCoalesce, modeWritePerDelivery}

// startServer starts the peer in-process and returns it for inspection.
func startServer(t *testing.T, extra ...string) (*server, *peertest.Peer) {
	t.Helper()
	s, err := start(append([]string{"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	return s, &peertest.Peer{WS: s.wsAddr, API: s.api.Addr()}
}

// dialSmallWindow dials with a tiny receive buffer so the server's writes
// hit EAGAIN quickly while the client is not reading.
func dialSmallWindow(t *testing.T, p *peertest.Peer, topics string) *websocket.Conn {
	t.Helper()
	nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: peertest.Timeout}
	c, _, err := d.Dial("ws://"+p.WS+"/ws?topics="+topics, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestBackpressure publishes far more than the kernel can buffer to a
// client that is not reading: writes must hit EAGAIN, queue in pending,
// and drain on EPOLLOUT in order and byte-exact once the client reads.
func TestBackpressure(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { testBackpressure(t, mode) })
	}
}

func testBackpressure(t *testing.T, mode string) {
	s, p := startServer(t, "-max-pending", "64000000", "-mode", mode)
	c := dialSmallWindow(t, p, "bp")
	data := `"` + strings.Repeat("b", 64<<10) + `"`
	const n = 160 // ~10 MiB: more than tcp_wmem max + a 4 KiB window
	for i := 1; i <= n; i++ {
		if r := p.Publish(t, "bp", data); r.Recipients != 1 {
			t.Fatalf("publish %d: %+v", i, r)
		}
	}
	if s.eagain.Load() == 0 {
		t.Fatal("no write hit EAGAIN; the pending path was not exercised")
	}
	for i := 1; i <= n; i++ {
		if got := peertest.Read(t, c); got.Seq != uint64(i) || string(got.Data) != data {
			t.Fatalf("message %d: seq %d, %d data bytes", i, got.Seq, len(got.Data))
		}
	}
	// Drained: the next publish goes straight out again.
	if r := p.Publish(t, "bp", `"tail"`); r.Seq != n+1 {
		t.Fatalf("tail publish: %+v", r)
	}
	if got := peertest.Read(t, c); got.Seq != n+1 || string(got.Data) != `"tail"` {
		t.Fatalf("tail: %+v", got)
	}
	if d := s.drops.Load(); d != 0 {
		t.Fatalf("%d drops with a 64 MB pending cap", d)
	}
}

// TestPendingCapDrops: past -max-pending whole frames are dropped for that
// connection; what it does get stays framed, exact and in seq order.
func TestPendingCapDrops(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { testPendingCapDrops(t, mode) })
	}
}

func testPendingCapDrops(t *testing.T, mode string) {
	s, p := startServer(t, "-max-pending", "300000", "-mode", mode)
	c := dialSmallWindow(t, p, "cap")
	data := `"` + strings.Repeat("c", 64<<10) + `"`
	for i := 0; i < 200 && s.drops.Load() == 0; i++ {
		p.Publish(t, "cap", data)
	}
	if s.drops.Load() == 0 {
		t.Fatal("no drops after 200 publishes of 64 KiB against a 300 kB cap")
	}
	// Once the client reads, pending drains and a marker gets through.
	var last uint64
	got := make(chan error, 1)
	go func() {
		for {
			_ = c.SetReadDeadline(time.Now().Add(peertest.Timeout))
			_, msg, err := c.ReadMessage()
			if err != nil {
				got <- err
				return
			}
			var d peertest.Delivery
			if err := json.Unmarshal(msg, &d); err != nil {
				got <- err
				return
			}
			seq := d.Seq
			if seq <= last {
				t.Errorf("seq %d after %d", seq, last)
			}
			last = seq
			if string(d.Data) == `"marker"` {
				got <- nil
				return
			}
			if string(d.Data) != data {
				t.Errorf("seq %d: corrupted data (%d bytes)", seq, len(d.Data))
			}
		}
	}()
	peertest.Eventually(t, "the marker to be queued", func() bool {
		return p.Publish(t, "cap", `"marker"`).Recipients == 1
	})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestRawClient drives the hand-written handshake and frame parser with a
// raw socket: the request head split over writes with a ping pipelined
// behind it, then a ping sent one byte per write, then a close.
func TestRawClient(t *testing.T) {
	_, p := startServer(t)
	nc, err := net.DialTimeout("tcp", p.WS, peertest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(peertest.Timeout))
	head := "GET /ws?topics=raw%3Aone,raw HTTP/1.1\r\nHost: x\r\n" +
		"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for _, part := range []string{head[:7], head[7:40], head[40 : len(head)-1], head[len(head)-1:] + string(clientFrame(opPing, "p1"))} {
		if _, err := nc.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake reply %d %v", resp.StatusCode, resp.Header)
	}
	expectFrame(t, br, 0x80|opPong, "p1")
	for _, b := range clientFrame(opPing, "p2") {
		if _, err := nc.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	expectFrame(t, br, 0x80|opPong, "p2")
	if r := p.Publish(t, "raw:one", `{"k":[1]}`); r.Recipients != 1 {
		t.Fatalf("publish: %+v", r)
	}
	expectFrame(t, br, 0x80|opText, `{"topic":"raw:one","seq":1,"data":{"k":[1]}}`)
	closePayload := string([]byte{0x03, 0xE8}) + "done"
	if _, err := nc.Write(clientFrame(opClose, closePayload)); err != nil {
		t.Fatal(err)
	}
	expectFrame(t, br, 0x80|opClose, closePayload)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after close echo: %v, want EOF", err)
	}
}

// clientFrame builds a masked client frame (payload < 126 bytes).
func clientFrame(op byte, payload string) []byte {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := []byte{0x80 | op, 0x80 | byte(len(payload))}
	f = append(f, mask[:]...)
	for i := 0; i < len(payload); i++ {
		f = append(f, payload[i]^mask[i&3])
	}
	return f
}

func expectFrame(t *testing.T, br *bufio.Reader, b0 byte, payload string) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatal(err)
	}
	n := int(h[1])
	switch n {
	case 126:
		var l [2]byte
		_, _ = io.ReadFull(br, l[:])
		n = int(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, _ = io.ReadFull(br, l[:])
		n = int(binary.BigEndian.Uint64(l[:]))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if h[0] != b0 || string(body) != payload {
		t.Fatalf("frame %#x %q, want %#x %q", h[0], body, b0, payload)
	}
}

// TestPublishSteadyStateAllocs checks the yardstick claim in
// write-per-delivery mode on a running server: once a topic's frame buffer
// has grown, a publish (frame once, one locked write per subscriber)
// allocates nothing, however many subscribers there are. (Coalesce mode:
// TestCoalesceSteadyStateAllocs, which also covers the loop's flush.)
func TestPublishSteadyStateAllocs(t *testing.T) {
	s, p := startServer(t, "-mode", modeWritePerDelivery)
	const subs = 20
	for i := 0; i < subs; i++ {
		c := p.MustDial(t, "alloc")
		nc := c.NetConn()
		go func() { _, _ = io.Copy(io.Discard, nc) }() // drain without framing work
	}
	data := []byte(`{"price":101.25,"qty":7}`)
	peertest.Eventually(t, "subscribers registered", func() bool {
		_, n, _ := s.Publish("alloc", data)
		return n == subs
	})
	allocs := testing.AllocsPerRun(200, func() {
		if _, n, _ := s.Publish("alloc", data); n != subs {
			t.Fatalf("recipients %d", n)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per publish to %d subscribers, want 0", allocs, subs)
	}
}
