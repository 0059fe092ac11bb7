package wsclient

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/internal/testutil"
)

// fakeServer accepts one connection on a fresh loopback port and runs
// serve on it once the request head has been read.
func fakeServer(t *testing.T, serve func(c net.Conn, r *bufio.Reader, key string) error) (string, <-chan error) {
	t.Helper()
	return fakeServerHTTP(t, func(c net.Conn, r *bufio.Reader, req *http.Request) error {
		return serve(c, r, req.Header.Get("Sec-WebSocket-Key"))
	})
}

// fakeServerHTTP is fakeServer handing serve the whole request.
func fakeServerHTTP(t *testing.T, serve func(c net.Conn, r *bufio.Reader, req *http.Request) error) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			done <- err
			return
		}
		done <- serve(c, r, req)
	}()
	return ln.Addr().String(), done
}

// dialFor dials with d (against a fake server that reports through done)
// and checks that the dial ends with cause (Classify).
func dialFor(t *testing.T, d *Dialer, done <-chan error, cause string) {
	t.Helper()
	nc, _, err := d.Dial(context.Background(), "")
	if nc != nil {
		nc.Close()
	}
	if got := Classify(err); got != cause {
		t.Errorf("cause %q (%v), want %q", got, err, cause)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func accept(key string) string {
	s := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(s[:])
}

func delivery(topic string, seq uint64) []byte {
	data := check.AppendData(nil, time.Now().UnixNano(), 40)
	env := fmt.Appendf(nil, `{"topic":%q,"seq":%d,"data":%s}`, topic, seq, data)
	return AppendServerFrame(nil, ws.OpText, true, env)
}

// readClientFrame reads one frame from the client and insists it is masked.
func readClientFrame(r *bufio.Reader) (ws.OpCode, []byte, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return 0, nil, err
	}
	if !h.Masked {
		return 0, nil, errors.New("client frame not masked")
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	ws.Cipher(p, h.Mask, 0)
	return h.OpCode, p, nil
}

// TestEngine runs one connection against a scripted server: bytes after
// the 101, frames split mid-header, a ping (the pong must come back
// masked), a gap, a late seq, a duplicate, and a server close.
func TestEngine(t *testing.T) {
	addr, done := fakeServer(t, func(c net.Conn, r *bufio.Reader, key string) error {
		head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n\r\n"
		// Seq 1 rides in the same write as the 101.
		if _, err := c.Write(append([]byte(head), delivery("a", 1)...)); err != nil {
			return err
		}
		two := append(delivery("a", 2), delivery("a", 3)...)
		if _, err := c.Write(two[:1]); err != nil { // half a header
			return err
		}
		if _, err := c.Write(two[1:]); err != nil {
			return err
		}
		if _, err := c.Write(AppendServerFrame(nil, ws.OpPing, true, []byte("hb"))); err != nil {
			return err
		}
		op, p, err := readClientFrame(r)
		if err != nil || op != ws.OpPong || string(p) != "hb" {
			return fmt.Errorf("want masked pong hb, got op %d %q %v", op, p, err)
		}
		var rest []byte
		for _, s := range []uint64{5, 4, 4} { // gap (4), late 4, duplicate 4
			rest = append(rest, delivery("a", s)...)
		}
		rest = append(rest, delivery("zz", 1)...) // a topic never asked for
		rest = AppendServerFrame(rest, ws.OpText, true, []byte(`{"op":"ack","id":1}`))
		rest = AppendServerFrame(rest, ws.OpClose, true, []byte{0x03, 0xe9})
		if _, err := c.Write(rest); err != nil {
			return err
		}
		op, p, err = readClientFrame(r)
		if err != nil || op != ws.OpClose || len(p) < 2 || p[0] != 0x03 || p[1] != 0xe9 {
			return fmt.Errorf("want close 1001 echo, got op %d %q %v", op, p, err)
		}
		return nil
	})
	e, err := New(Config{Topics: []string{"a"}, TrackMessages: 8, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	d := &Dialer{Addr: addr, Source: net.IPv4(127, 0, 0, 2), Timeout: 10 * time.Second}
	if _, took, err := e.Connect(context.Background(), d, []int{0}, true); err != nil || took <= 0 {
		t.Fatalf("connect: %v (took %v)", err, took)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if e.Lost() != 1 {
			return fmt.Errorf("lost %d", e.Lost())
		}
		return nil
	})
	e.Stop()
	r := e.Result([]uint64{6})
	c := r.Counts
	if c.Received != 6 || c.Missing != 1 || c.Dup != 1 || c.OOO != 1 || c.Gaps != 1 {
		t.Errorf("counts %+v", c)
	}
	if r.Unknown != 1 || r.Other != 1 || r.Pings != 1 || r.Readers != 1 {
		t.Errorf("unknown %d other %d pings %d readers %d", r.Unknown, r.Other, r.Pings, r.Readers)
	}
	if r.Lost["server_close_1001"] != 1 {
		t.Errorf("lost %v", r.Lost)
	}
	if r.Latency.Count() != 6 {
		t.Errorf("latency samples %d", r.Latency.Count())
	}
	if r.Msgs.Count[0][3] != 2 || r.Msgs.Count[0][0] != 1 {
		t.Errorf("message table %v", r.Msgs.Count)
	}
	if e.Up() != 0 {
		t.Errorf("%d still up", e.Up())
	}
}

func TestHandshakeRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		resp  func(key string) string
		cause string
	}{
		"503": {func(string) string {
			return "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
		}, "http_503"},
		"bad accept": {func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n"
		}, "bad_accept"},
		"garbage": {func(string) string { return "SSH-2.0-hello\r\n\r\n" }, "bad_response"},
		"eof":     {func(string) string { return "HTTP/1.1 101 Switching" }, "eof"},
	} {
		t.Run(name, func(t *testing.T) {
			addr, done := fakeServer(t, func(c net.Conn, _ *bufio.Reader, key string) error {
				_, err := c.Write([]byte(tc.resp(key)))
				return err
			})
			dialFor(t, &Dialer{Addr: addr, Target: "/ws", Timeout: 10 * time.Second}, done, tc.cause)
		})
	}
}

func TestHandshakeHeaderCase(t *testing.T) {
	addr, done := fakeServer(t, func(c net.Conn, _ *bufio.Reader, key string) error {
		_, err := c.Write([]byte("HTTP/1.1 101 OK\r\nsec-websocket-accept:  " + accept(key) + "\r\n\r\n"))
		return err
	})
	d := &Dialer{Addr: addr, Target: "/ws?topics=a"}
	nc, rest, err := d.Dial(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if len(rest) != 0 {
		t.Fatalf("rest %q", rest)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestClassify(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                     "none",
		syscall.ECONNREFUSED:                    "refused",
		fmt.Errorf("x: %w", syscall.ECONNRESET): "reset",
		syscall.EADDRNOTAVAIL:                   "addr_not_avail",
		syscall.EMFILE:                          "too_many_files",
		context.DeadlineExceeded:                "timeout",
		&StatusError{Code: 404}:                 "http_404",
		ErrMaskedServerFrame:                    "protocol",
		net.ErrClosed:                           "closed",
		errors.New("mystery"):                   "other",
		textproto.ProtocolError("x"):            "other",
	} {
		if got := Classify(err); got != want {
			t.Errorf("%v: %q, want %q", err, got, want)
		}
	}
	if !strings.HasPrefix((&StatusError{Code: 503}).Error(), "wsclient:") {
		t.Error("StatusError text")
	}
}

// TestDialNoTCPKeepalive: a dialed socket has SO_KEEPALIVE off, so a
// million idle clients cost the kernel no keepalive probes.
func TestDialNoTCPKeepalive(t *testing.T) {
	addr, done := fakeServer(t, func(c net.Conn, _ *bufio.Reader, key string) error {
		_, err := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n\r\n"))
		return err
	})
	d := &Dialer{Addr: addr, Target: "/ws", Timeout: 10 * time.Second}
	nc, _, err := d.Dial(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rc, err := nc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if on != 0 {
		t.Errorf("SO_KEEPALIVE = %d, want 0", on)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
