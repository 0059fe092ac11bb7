package server

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

type F = wstest.Frame

var (
	text = ws.OpText
	cont = ws.OpContinuation
)

func TestProtocolCloseCodes(t *testing.T) {
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name   string
		frames []F
		code   ws.StatusCode
	}{
		{"unmasked frame", []F{{Op: text, Payload: []byte("{}"), Unmasked: true}}, 1002},
		{"rsv1 set", []F{{Op: text, Payload: []byte("{}"), Rsv: 4}}, 1002},
		{"rsv3 set", []F{{Op: text, Payload: []byte("{}"), Rsv: 1}}, 1002},
		{"reserved data opcode 3", []F{{Op: 3}}, 1002},
		{"reserved control opcode 11", []F{{Op: 11}}, 1002},
		{"fragmented ping", []F{{Op: ws.OpPing, NotFin: true}}, 1002},
		{"ping over 125 bytes", []F{{Op: ws.OpPing, Payload: make([]byte, 126)}}, 1002},
		{"continuation without start", []F{{Op: cont, Payload: []byte("x")}}, 1002},
		{"new data frame inside fragmented message", []F{{Op: text, Payload: []byte("a"), NotFin: true}, {Op: text, Payload: []byte("b")}}, 1002},
		{"64-bit length with top bit", []F{{Op: text, Len64: 1 << 63}}, 1002},
		{"close with 1-byte payload", []F{{Op: ws.OpClose, Payload: []byte{0x03}}}, 1002},
		{"close code 999", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(999, "")}}, 1002},
		{"close code 1004", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1004, "")}}, 1002},
		{"close code 1005", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1005, "")}}, 1002},
		{"close code 1006", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1006, "")}}, 1002},
		{"close code 1015", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1015, "")}}, 1002},
		{"close code 1016", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1016, "")}}, 1002},
		{"close code 2999", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(2999, "")}}, 1002},
		{"close code 5000", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(5000, "")}}, 1002},
		{"invalid utf-8 text", []F{{Op: text, Payload: []byte{0xff, 0xfe}}}, 1007},
		{"invalid utf-8 across fragments", []F{{Op: text, Payload: []byte{0xe2, 0x82}, NotFin: true}, {Op: cont, Payload: []byte{0x28}}}, 1007},
		{"invalid utf-8 close reason", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1000, "\xff")}}, 1007},
		{"message over max-message", []F{{Op: text, Payload: []byte(big)}}, 1009},
		{"fragments over max-message", []F{{Op: text, Payload: []byte(big[:1000]), NotFin: true}, {Op: cont, Payload: []byte(big[:1000])}}, 1009},
		{"client close 1000 echoed", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1000, "bye")}}, 1000},
		{"client close 3000 echoed", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(3000, "")}}, 3000},
		{"client close 4999 echoed", []F{{Op: ws.OpClose, Payload: wstest.CloseFramePayload(4999, "")}}, 4999},
		{"empty close echoed empty", []F{{Op: ws.OpClose}}, 0},
	}
	s := startServer(t, Config{Conn: connCfg(1500)})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s, "/ws")
			if err := c.Write(tc.frames...); err != nil {
				t.Fatal(err)
			}
			cf, err := c.ExpectClose(readWait)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if cf.Code != tc.code {
				t.Fatalf("close code = %d %q, want %d", cf.Code, cf.Reason, tc.code)
			}
			// After the close frame the server ends the TCP connection.
			if tc.code != 1000 && tc.code != 3000 && tc.code != 4999 && tc.code != 0 {
				c.Write(F{Op: ws.OpClose, Payload: wstest.CloseFramePayload(uint16(tc.code), "")})
			}
			if _, _, err := c.Read(readWait); !errors.Is(err, io.EOF) && !isReset(err) {
				t.Fatalf("after close: err = %v, want EOF", err)
			}
		})
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestPingPong(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	for _, p := range []string{"", "hello", strings.Repeat("p", 125)} {
		if err := c.Write(F{Op: ws.OpPing, Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
		h, got, err := c.Read(readWait)
		if err != nil || h.OpCode != ws.OpPong || string(got) != p {
			t.Fatalf("ping %q: got op %v payload %q err %v", p, h.OpCode, got, err)
		}
	}
}

func TestFragmentedCommandReassembled(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	cmd := []byte(`{"op":"subscribe","topics":["frag"],"id":11}`)
	err := c.Write(
		F{Op: text, Payload: cmd[:5], NotFin: true},
		F{Op: ws.OpPing, Payload: []byte("mid")},
		F{Op: cont, Payload: cmd[5:20], NotFin: true},
		F{Op: cont, Payload: cmd[20:]},
	)
	if err != nil {
		t.Fatal(err)
	}
	h, p, err := c.Read(readWait)
	if err != nil || h.OpCode != ws.OpPong || string(p) != "mid" {
		t.Fatalf("want pong first, got %v %q %v", h.OpCode, p, err)
	}
	if r := readReply(t, c); r.Op != "ack" || *r.ID != 11 {
		t.Fatalf("reply = %+v", r)
	}
}

func TestFrameSplitAcrossWrites(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	b := F{Op: text, Payload: []byte(`{"op":"subscribe","topics":["slow"],"id":12}`)}.Encode()
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let each byte be its own read
	}
	if r := readReply(t, c); r.Op != "ack" || *r.ID != 12 {
		t.Fatalf("reply = %+v", r)
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws?topics=s")
	publish(t, s, "s", `"before"`)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(t.Context()) }()
	if r := readReply(t, c); r.Seq != 1 {
		t.Fatalf("queued delivery lost: %+v", r)
	}
	cf, err := c.ExpectClose(readWait)
	if err != nil || cf.Code != ws.StatusGoingAway {
		t.Fatalf("close = %v, %v; want 1001", cf, err)
	}
	// Shutdown waits for this client's answer; meanwhile not ready, and no
	// new upgrades.
	get(t, "http://"+s.APIAddr().String()+"/readyz", 503)
	if _, err := wstest.Dial(s.WSAddr().String(), "/ws", nil); err == nil {
		t.Fatal("upgrade accepted during shutdown")
	}
	c.Write(F{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1001, "")})
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
