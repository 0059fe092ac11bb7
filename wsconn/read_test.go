package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

// TestReadSplitWrites sends one message in many small writes: the reader must
// keep the partial frame between reads and deliver the message exactly once.
func TestReadSplitWrites(t *testing.T) {
	ts := startServer(t, Config{MaxMessage: 128 << 10}, nil)
	tests := []struct {
		name    string
		op      ws.OpCode
		size    int
		hdrStep int // bytes per write while in the header
		step    int // bytes per write in the payload
	}{
		{"7-bit length byte by byte", ws.OpText, 100, 1, 1},
		{"empty payload byte by byte", ws.OpText, 0, 1, 1},
		{"16-bit length byte by byte", ws.OpBinary, 300, 1, 1},
		{"64-bit length header byte by byte", ws.OpBinary, 70000, 1, 4093},
		{"64-bit length in two halves", ws.OpBinary, 100000, 7, 50000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := ts.dialRec(t)
			payload := make([]byte, tc.size)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			b := wstest.Frame{Op: tc.op, Payload: payload}.Encode()
			hn := len(b) - tc.size
			for off := 0; off < len(b); {
				step := tc.step
				if off < hn {
					step = min(tc.hdrStep, hn-off)
				}
				end := min(off+step, len(b))
				write(t, c, b[off:end])
				off = end
			}
			m := expectMsg(t, rec)
			if m.Op != tc.op || !bytes.Equal(m.Payload, payload) {
				t.Fatalf("delivered %v, want %v", m, message{tc.op, payload})
			}
			if skipped := barrier(t, c); len(skipped) != 0 {
				t.Fatalf("unexpected frames from server: %v", skipped)
			}
			expectNoMsg(t, rec)
		})
	}
}

// TestReadSplitEverywhere splits a stream of three frames at every position.
func TestReadSplitEverywhere(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	stream := append(wstest.Frame{Op: ws.OpText, Payload: []byte("héllo"), NotFin: true}.Encode(),
		wstest.Frame{Op: ws.OpPing, Payload: []byte("p")}.Encode()...)
	stream = append(stream, wstest.Frame{Op: ws.OpContinuation, Payload: []byte(" wörld")}.Encode()...)
	c, rec := ts.dialRec(t)
	for split := 1; split < len(stream); split++ {
		write(t, c, stream[:split])
		write(t, c, stream[split:])
		h, p, err := c.Read(waitShort)
		if err != nil || h.OpCode != ws.OpPong || string(p) != "p" {
			t.Fatalf("split %d: got %v %q %v, want pong \"p\"", split, h.OpCode, p, err)
		}
		if m := expectMsg(t, rec); m.Op != ws.OpText || string(m.Payload) != "héllo wörld" {
			t.Fatalf("split %d: delivered %v", split, m)
		}
	}
	barrier(t, c)
	expectNoMsg(t, rec)
}

func TestReadFragmented(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tests := []struct {
		name   string
		frames []wstest.Frame
		pongs  []string // pong payloads expected, in order
		want   message
	}{
		{
			name: "text and two continuations",
			frames: []wstest.Frame{
				{Op: ws.OpText, Payload: []byte("foo"), NotFin: true},
				{Op: ws.OpContinuation, Payload: []byte("bar"), NotFin: true},
				{Op: ws.OpContinuation, Payload: []byte("baz")},
			},
			want: message{ws.OpText, []byte("foobarbaz")},
		},
		{
			name: "binary with empty fragments",
			frames: []wstest.Frame{
				{Op: ws.OpBinary, NotFin: true},
				{Op: ws.OpContinuation, Payload: []byte{0, 0xff}, NotFin: true},
				{Op: ws.OpContinuation},
			},
			want: message{ws.OpBinary, []byte{0, 0xff}},
		},
		{
			name: "ping between fragments",
			frames: []wstest.Frame{
				{Op: ws.OpText, Payload: []byte("foo"), NotFin: true},
				{Op: ws.OpPing, Payload: []byte("mid")},
				{Op: ws.OpContinuation, Payload: []byte("bar"), NotFin: true},
				{Op: ws.OpPong, Payload: []byte("unsolicited")},
				{Op: ws.OpPing, Payload: []byte("mid2")},
				{Op: ws.OpContinuation, Payload: []byte("baz")},
			},
			pongs: []string{"mid", "mid2"},
			want:  message{ws.OpText, []byte("foobarbaz")},
		},
		{
			name: "large fragments",
			frames: []wstest.Frame{
				{Op: ws.OpBinary, Payload: bytes.Repeat([]byte("x"), 20000), NotFin: true},
				{Op: ws.OpContinuation, Payload: bytes.Repeat([]byte("y"), 20000)},
			},
			want: message{ws.OpBinary, append(bytes.Repeat([]byte("x"), 20000), bytes.Repeat([]byte("y"), 20000)...)},
		},
	}
	for _, tc := range tests {
		for _, oneWrite := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/one write=%v", tc.name, oneWrite), func(t *testing.T) {
				c, rec := ts.dialRec(t)
				if oneWrite {
					send(t, c, tc.frames...)
				} else {
					for _, f := range tc.frames {
						send(t, c, f)
					}
				}
				for _, want := range tc.pongs {
					h, p, err := c.Read(waitShort)
					if err != nil || h.OpCode != ws.OpPong || string(p) != want {
						t.Fatalf("got %v %q %v, want pong %q", h.OpCode, p, err, want)
					}
				}
				m := expectMsg(t, rec)
				if m.Op != tc.want.Op || !bytes.Equal(m.Payload, tc.want.Payload) {
					t.Fatalf("delivered %v, want %v", m, tc.want)
				}
				if skipped := barrier(t, c); len(skipped) != 0 {
					t.Fatalf("unexpected frames: %v", skipped)
				}
				expectNoMsg(t, rec)
			})
		}
	}
}

func TestReadMaxMessage(t *testing.T) {
	const max = 1024
	ts := startServer(t, Config{MaxMessage: max}, nil)
	big := func(n int) []byte { return bytes.Repeat([]byte("m"), n) }
	tests := []struct {
		name    string
		stream  []byte
		tooBig  bool
		deliver []byte
	}{
		{
			name:    "exactly max",
			stream:  wstest.Frame{Op: ws.OpBinary, Payload: big(max)}.Encode(),
			deliver: big(max),
		},
		{
			name:   "one over max",
			stream: wstest.Frame{Op: ws.OpBinary, Payload: big(max + 1)}.Encode(),
			tooBig: true,
		},
		{
			// Only the header is sent: the size is judged before the payload.
			name:   "header announces too much",
			stream: wstest.Frame{Op: ws.OpText, Payload: big(2000)}.Encode()[:8],
			tooBig: true,
		},
		{
			name:   "64-bit length header announces a huge message",
			stream: wstest.Frame{Op: ws.OpBinary, Len64: 1 << 40}.Encode(),
			tooBig: true,
		},
		{
			name: "fragments exactly max",
			stream: append(wstest.Frame{Op: ws.OpText, Payload: big(max / 2), NotFin: true}.Encode(),
				wstest.Frame{Op: ws.OpContinuation, Payload: big(max / 2)}.Encode()...),
			deliver: big(max),
		},
		{
			name: "fragments sum over max",
			stream: append(wstest.Frame{Op: ws.OpText, Payload: big(600), NotFin: true}.Encode(),
				wstest.Frame{Op: ws.OpContinuation, Payload: big(600)}.Encode()...),
			tooBig: true,
		},
		{
			// The third fragment's header alone pushes the sum over.
			name: "many small fragments, last header too big",
			stream: bytes.Join([][]byte{
				wstest.Frame{Op: ws.OpBinary, Payload: big(500), NotFin: true}.Encode(),
				wstest.Frame{Op: ws.OpContinuation, Payload: big(500), NotFin: true}.Encode(),
				wstest.Frame{Op: ws.OpContinuation, Payload: big(100)}.Encode()[:8],
			}, nil),
			tooBig: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := ts.dialRec(t)
			write(t, c, tc.stream)
			if !tc.tooBig {
				m := expectMsg(t, rec)
				if !bytes.Equal(m.Payload, tc.deliver) {
					t.Fatalf("delivered %v", m)
				}
				barrier(t, c)
				return
			}
			expectClose(t, c, ws.StatusMessageTooBig, "message too big")
			expectEOF(t, c)
			send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1009, "")})
			waitClosed(t, rec)
			expectNoMsg(t, rec)
			if got := ts.srv.Stats().CloseSent(closeSlot(ws.StatusMessageTooBig)); got < 1 {
				t.Fatalf("CloseSent(1009) = %d", got)
			}
		})
	}
}

func TestReadUTF8(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tests := []struct {
		name    string
		frames  []wstest.Frame
		valid   bool
		deliver message
	}{
		{
			name:   "invalid text",
			frames: []wstest.Frame{{Op: ws.OpText, Payload: []byte("bad \xff byte")}},
		},
		{
			name:   "surrogate half",
			frames: []wstest.Frame{{Op: ws.OpText, Payload: []byte("\xed\xa0\x80")}},
		},
		{
			name:   "truncated code point at the end",
			frames: []wstest.Frame{{Op: ws.OpText, Payload: []byte("caf\xc3")}},
		},
		{
			name: "code point split across fragments",
			frames: []wstest.Frame{
				{Op: ws.OpText, Payload: []byte("caf\xc3"), NotFin: true},
				{Op: ws.OpContinuation, Payload: []byte("\xa9 \xe2\x98"), NotFin: true},
				{Op: ws.OpContinuation, Payload: []byte("\x83")},
			},
			valid:   true,
			deliver: message{ws.OpText, []byte("café ☃")},
		},
		{
			name: "invalid sequence across fragments",
			frames: []wstest.Frame{
				{Op: ws.OpText, Payload: []byte("caf\xc3"), NotFin: true},
				{Op: ws.OpContinuation, Payload: []byte("(")},
			},
		},
		{
			name:    "binary is not checked",
			frames:  []wstest.Frame{{Op: ws.OpBinary, Payload: []byte("\xff\xfe")}},
			valid:   true,
			deliver: message{ws.OpBinary, []byte("\xff\xfe")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := ts.dialRec(t)
			send(t, c, tc.frames...)
			if tc.valid {
				m := expectMsg(t, rec)
				if m.Op != tc.deliver.Op || !bytes.Equal(m.Payload, tc.deliver.Payload) {
					t.Fatalf("delivered %v, want %v", m, tc.deliver)
				}
				barrier(t, c)
				return
			}
			expectClose(t, c, ws.StatusInvalidFramePayloadData, "invalid utf-8")
			expectEOF(t, c)
			c.Close()
			waitClosed(t, rec)
			expectNoMsg(t, rec)
		})
	}
}

func TestReadPing(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	for _, p := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0xa5}, 125)} {
		t.Run(fmt.Sprintf("payload %d bytes", len(p)), func(t *testing.T) {
			c := ts.dial(t)
			send(t, c, wstest.Frame{Op: ws.OpPing, Payload: p})
			h, got, err := c.Read(waitShort)
			if err != nil {
				t.Fatal(err)
			}
			if h.OpCode != ws.OpPong || !h.Fin || !bytes.Equal(got, p) {
				t.Fatalf("got %v fin=%v % x, want pong % x", h.OpCode, h.Fin, got, p)
			}
		})
	}
}

// TestReadProtocolErrors checks the close code for every kind of bad frame,
// and that the server then ends the TCP stream.
func TestReadProtocolErrors(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tests := []struct {
		name   string
		frames []wstest.Frame
		code   ws.StatusCode
	}{
		{"unmasked frame", []wstest.Frame{{Op: ws.OpText, Payload: []byte("x"), Unmasked: true}}, 1002},
		{"rsv1", []wstest.Frame{{Op: ws.OpText, Payload: []byte("x"), Rsv: 4}}, 1002},
		{"rsv3", []wstest.Frame{{Op: ws.OpText, Payload: []byte("x"), Rsv: 1}}, 1002},
		{"reserved data opcode", []wstest.Frame{{Op: 0x3}}, 1002},
		{"reserved control opcode", []wstest.Frame{{Op: 0xb}}, 1002},
		{"fragmented ping", []wstest.Frame{{Op: ws.OpPing, NotFin: true}}, 1002},
		{"ping over 125 bytes", []wstest.Frame{{Op: ws.OpPing, Payload: make([]byte, 126)}}, 1002},
		{"continuation without start", []wstest.Frame{{Op: ws.OpContinuation, Payload: []byte("x")}}, 1002},
		{"new message inside fragmented one", []wstest.Frame{
			{Op: ws.OpText, Payload: []byte("a"), NotFin: true},
			{Op: ws.OpText, Payload: []byte("b")},
		}, 1002},
		{"64-bit length with MSB", []wstest.Frame{{Op: ws.OpBinary, Len64: 1 << 63}}, 1002},
		{"close with one byte", []wstest.Frame{{Op: ws.OpClose, Payload: []byte{3}}}, 1002},
		{"close with code 1005", []wstest.Frame{{Op: ws.OpClose, Payload: closePayload(1005, "")}}, 1002},
		{"close with code 999", []wstest.Frame{{Op: ws.OpClose, Payload: closePayload(999, "")}}, 1002},
		{"close with code 5000", []wstest.Frame{{Op: ws.OpClose, Payload: closePayload(5000, "")}}, 1002},
		{"close with invalid utf-8 reason", []wstest.Frame{{Op: ws.OpClose, Payload: closePayload(1000, "\xff")}}, 1007},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := ts.dialRec(t)
			send(t, c, tc.frames...)
			expectClose(t, c, tc.code, "*")
			expectEOF(t, c)
			c.Close()
			waitClosed(t, rec)
			expectNoMsg(t, rec)
		})
	}
}

func TestReadClientClose(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tests := []struct {
		name    string
		payload []byte
		echo    ws.StatusCode // 0: an empty close body
	}{
		{"1000 with reason", closePayload(1000, "bye now"), 1000},
		{"1001 without reason", closePayload(1001, ""), 1001},
		{"application code", closePayload(4321, "app"), 4321},
		{"empty body", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := ts.dialRec(t)
			send(t, c, wstest.Frame{Op: ws.OpText, Payload: []byte("before")},
				wstest.Frame{Op: ws.OpClose, Payload: tc.payload},
				wstest.Frame{Op: ws.OpText, Payload: []byte("after close: ignored")})
			h, p, err := c.Read(waitShort)
			if err != nil {
				t.Fatal(err)
			}
			if h.OpCode != ws.OpClose {
				t.Fatalf("got %v, want the close echo", frameOut{h.OpCode, p})
			}
			switch {
			case tc.echo == 0 && len(p) != 0:
				t.Fatalf("echo % x, want an empty close", p)
			case tc.echo != 0 && (len(p) < 2 || ws.StatusCode(int(p[0])<<8|int(p[1])) != tc.echo):
				t.Fatalf("echo %v, want code %d", frameOut{h.OpCode, p}, tc.echo)
			}
			// After the echo the server ends the TCP stream.
			if _, _, err := c.Read(waitShort); !errors.Is(err, io.EOF) {
				t.Fatalf("after the echo: %v, want EOF", err)
			}
			if m := expectMsg(t, rec); string(m.Payload) != "before" {
				t.Fatalf("delivered %v", m)
			}
			c.Close()
			waitClosed(t, rec)
			expectNoMsg(t, rec)
		})
	}
}

// TestReadPeerCloseCause checks OnClose's cause after the peer started the
// closing handshake: CloseError documents Remote as "the peer sent the close
// first".
func TestReadPeerCloseCause(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c, rec := ts.dialRec(t)
	send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(1000, "bye")})
	expectClose(t, c, 1000, "")
	expectEOF(t, c)
	c.Close()
	cause := waitClosed(t, rec)
	var ce *CloseError
	if !errors.As(cause, &ce) || !ce.Remote || ce.Code != 1000 {
		t.Fatalf("OnClose cause = %#v, want *CloseError{Code: 1000, Remote: true}", cause)
	}
}

// TestReadServerCloseAnswered: the server closes, the client answers; the
// cause is a CloseError with the peer's code.
func TestReadServerCloseAnswered(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c, rec := ts.dialRec(t)
	rec.conn.CloseWith(4000, "bye")
	expectClose(t, c, 4000, "bye")
	expectEOF(t, c)
	send(t, c, wstest.Frame{Op: ws.OpClose, Payload: closePayload(4000, "ok")})
	cause := waitClosed(t, rec)
	var ce *CloseError
	if !errors.As(cause, &ce) || ce.Code != 4000 || ce.Remote {
		t.Fatalf("OnClose cause = %#v, want *CloseError{Code: 4000}", cause)
	}
	// Sending after close is refused and counted as lost.
	lost := ts.srv.Stats().LostClosed.Load()
	if rec.conn.Send(textFrame("late")) {
		t.Fatal("Send after close reported success")
	}
	if got := ts.srv.Stats().LostClosed.Load(); got != lost+1 {
		t.Fatalf("LostClosed = %d, want %d", got, lost+1)
	}
	if got := ts.srv.Stats().CloseReceived(closeSlot(4000)); got != 1 {
		t.Fatalf("CloseReceived(other) = %d, want 1", got)
	}
}

// TestReadManyFramesOneWrite sends many messages in one write; all are
// delivered in order.
func TestReadManyFramesOneWrite(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c, rec := ts.dialRec(t)
	var fs []wstest.Frame
	for i := range 500 {
		fs = append(fs, wstest.Frame{Op: ws.OpText, Payload: []byte(fmt.Sprintf("msg-%03d-%s", i, strings.Repeat("z", i%50)))})
	}
	send(t, c, fs...)
	for i := range 500 {
		m := expectMsg(t, rec)
		if want := string(fs[i].Payload); string(m.Payload) != want {
			t.Fatalf("message %d = %q, want %q", i, m.Payload, want)
		}
	}
	barrier(t, c)
	expectNoMsg(t, rec)
}
