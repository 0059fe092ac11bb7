package wsconn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

// Fuzz server settings: a small MaxMessage so that 1009 is reachable, a queue
// deep enough that a burst of pongs is never a slow consumer, and no timers.
const (
	fuzzMaxMessage = 1024
	fuzzMaxInput   = 8 << 10
)

var fuzzProbe = wstest.Frame{Op: ws.OpPing, Payload: []byte("probe")}

// FuzzFrameReader writes arbitrary bytes, split into two writes at a chosen
// point, to an upgraded connection, and checks the server's answer against a
// model of RFC 6455 as wsconn implements it: the pongs and the close frame
// it must send, the messages it must deliver. The server must never panic,
// and every connection must be gone once the client hangs up.
func FuzzFrameReader(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed.data, seed.split)
	}
	h := newTestHandler()
	ts := startServer(f, Config{
		MaxMessage:   fuzzMaxMessage,
		SendQueue:    fuzzMaxInput,
		PingInterval: -1,
		IdleTimeout:  -1,
	}, h)

	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		if len(data) > fuzzMaxInput {
			t.Skip("input too large")
		}
		// Iterations run one at a time: no connection is left from earlier
		// ones (a failed iteration's may still be closing).
		waitOpenWithin(t, ts, 0, 4*time.Second)
		stream := bytes.Clone(data)
		// Without a close on the way, a ping after the input shows that the
		// connection is still usable (or, when the input ends inside a
		// frame, becomes part of that frame).
		if !runModel(data).closed {
			stream = append(stream, fuzzProbe.Encode()...)
		}
		want := runModel(stream)

		c, err := wstest.Dial(ts.addr, "/fuzz", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		// Hang up with a reset: thousands of inputs a second would otherwise
		// fill the ephemeral port range with TIME_WAIT sockets.
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		defer c.Close()
		rec := h.lookup(t, c.Conn)
		cut := int(split) % (len(stream) + 1)
		for _, part := range [][]byte{stream[:cut], stream[cut:]} {
			if len(part) == 0 {
				continue
			}
			c.Conn.SetWriteDeadline(time.Now().Add(waitShort))
			if _, err := c.Conn.Write(part); err != nil {
				if want.trailing && isEnded(err) {
					break // the server may drop the connection early
				}
				t.Fatalf("write: %v", err)
			}
		}

		// The server's frames, in order.
		for i, w := range want.out {
			hd, p, err := c.Read(2 * time.Second)
			if err != nil {
				if want.trailing && isEnded(err) {
					break // dropped after the close was queued
				}
				t.Fatalf("frame %d: want %v, got error %v (model %+v)", i, w, err, want)
			}
			got := frameOut{Op: hd.OpCode, Payload: p}
			if !w.matches(got) {
				t.Fatalf("frame %d: got %v, want %v (model %+v)", i, got, w, want)
			}
		}
		if want.closed {
			// After its close the server half-closes the socket.
			hd, p, err := c.Read(2 * time.Second)
			if err == nil {
				t.Fatalf("after the close: got %v, want EOF", frameOut{Op: hd.OpCode, Payload: p})
			}
			if !isEnded(err) {
				t.Fatalf("after the close: %v, want EOF", err)
			}
		}
		c.Close()

		// Shorter than the fuzzing engine's 10s hang detection, so that a
		// stuck connection is reported with its input.
		select {
		case <-rec.closed:
		case <-time.After(4 * time.Second):
			t.Fatalf("OnClose not called 4s after the client closed (model %+v)", want)
		}
		var got []message
	drain:
		for {
			select {
			case m := <-rec.msgs:
				got = append(got, m)
			default:
				break drain
			}
		}
		if len(got) != len(want.msgs) {
			t.Fatalf("delivered %d messages %v, want %d %v", len(got), got, len(want.msgs), want.msgs)
		}
		for i := range got {
			if got[i].Op != want.msgs[i].Op || !bytes.Equal(got[i].Payload, want.msgs[i].Payload) {
				t.Fatalf("message %d = %v, want %v", i, got[i], want.msgs[i])
			}
		}
		if n := ts.srv.Stats().Panics.Load(); n != 0 {
			t.Fatalf("%d handler panics", n)
		}
		waitOpenWithin(t, ts, 0, 4*time.Second)
	})
}

// waitOpenWithin waits until the server's Open count is n.
func waitOpenWithin(t testing.TB, ts *testServer, n int64, d time.Duration) {
	t.Helper()
	testutil.CheckFor(t, d, time.Millisecond, func() error {
		if got := ts.srv.Stats().Open.Load(); got != n {
			return fmt.Errorf("Stats().Open = %d, want %d", got, n)
		}
		return nil
	})
}

// expectFrame is a frame the model says the server sends.
type expectFrame struct {
	op      ws.OpCode     // OpPong or OpClose
	payload []byte        // the pong's payload
	code    ws.StatusCode // the close code; 0 for an empty close
}

func (e expectFrame) String() string {
	if e.op == ws.OpClose {
		return fmt.Sprintf("close(%d)", e.code)
	}
	return fmt.Sprintf("pong(%q)", e.payload)
}

func (e expectFrame) matches(f frameOut) bool {
	if f.Op != e.op {
		return false
	}
	if e.op != ws.OpClose {
		return bytes.Equal(f.Payload, e.payload)
	}
	if e.code == 0 {
		return len(f.Payload) == 0
	}
	return len(f.Payload) >= 2 && ws.StatusCode(binary.BigEndian.Uint16(f.Payload)) == e.code
}

// modelResult is what the server must do with a byte stream.
type modelResult struct {
	out    []expectFrame // pongs and, last, the close
	msgs   []message     // messages delivered
	closed bool          // the server sends a close frame (the last of out)
	// trailing: bytes follow the frame that made the server close. Depending
	// on how reads split them, the server may parse them in the closing
	// state and drop the connection before its queued frames are written,
	// so the client may see a prefix of out followed by EOF or a reset.
	trailing bool
}

// runModel is an independent reading of how wsconn treats client frames: a
// header is judged as soon as it is complete (length MSB, then
// ws.CheckHeader's rules, then MaxMessage including what a fragmented message
// already holds), a frame acts once complete, text is checked for UTF-8 when
// the message is complete, and the first close (sent by the client or caused
// by an error) ends what the server says.
func runModel(stream []byte) (r modelResult) {
	closeAt := func(code ws.StatusCode, end int) modelResult {
		r.out = append(r.out, expectFrame{op: ws.OpClose, code: code})
		r.closed = true
		r.trailing = len(stream) > end
		return r
	}
	var (
		fragOp ws.OpCode // opcode of the message being reassembled; 0 if none
		frag   []byte
	)
	off := 0
	for {
		b := stream[off:]
		if len(b) < 2 {
			return r
		}
		fin := b[0]&0x80 != 0
		rsv := b[0] >> 4 & 7
		op := ws.OpCode(b[0] & 0x0f)
		masked := b[1]&0x80 != 0
		hn := 2
		var length uint64
		switch l := b[1] & 0x7f; l {
		case 126:
			if len(b) < 4 {
				return r
			}
			length, hn = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return r
			}
			length, hn = binary.BigEndian.Uint64(b[2:]), 10
			if length>>63 != 0 {
				return closeAt(ws.StatusProtocolError, off+hn)
			}
		default:
			length = uint64(l)
		}
		var mask [4]byte
		if masked {
			if len(b) < hn+4 {
				return r
			}
			copy(mask[:], b[hn:])
			hn += 4
		}
		control := op >= 0x8
		switch {
		case op >= 0x3 && op <= 0x7, op >= 0xb:
			return closeAt(ws.StatusProtocolError, off+hn)
		case control && (length > 125 || !fin):
			return closeAt(ws.StatusProtocolError, off+hn)
		case rsv != 0, !masked:
			return closeAt(ws.StatusProtocolError, off+hn)
		case fragOp != 0 && !control && op != ws.OpContinuation:
			return closeAt(ws.StatusProtocolError, off+hn)
		case fragOp == 0 && op == ws.OpContinuation:
			return closeAt(ws.StatusProtocolError, off+hn)
		}
		size := length
		if op == ws.OpContinuation {
			size += uint64(len(frag))
		}
		if size > fuzzMaxMessage {
			return closeAt(ws.StatusMessageTooBig, off+hn)
		}
		if uint64(len(b)-hn) < length {
			return r
		}
		end := off + hn + int(length)
		p := bytes.Clone(b[hn : hn+int(length)])
		for i := range p {
			p[i] ^= mask[i%4]
		}
		off = end

		deliver := func(op ws.OpCode, p []byte) bool {
			if op == ws.OpText && !utf8.Valid(p) {
				closeAt(ws.StatusInvalidFramePayloadData, end)
				return false
			}
			r.msgs = append(r.msgs, message{Op: op, Payload: p})
			return true
		}
		switch {
		case op == ws.OpPing:
			r.out = append(r.out, expectFrame{op: ws.OpPong, payload: p})
		case op == ws.OpPong:
		case op == ws.OpClose:
			switch {
			case len(p) == 0:
				return closeAt(0, end)
			case len(p) == 1:
				return closeAt(ws.StatusProtocolError, end)
			}
			code := ws.StatusCode(binary.BigEndian.Uint16(p))
			// An invalid code fails (1002) before the reason is looked at.
			switch {
			case !modelCloseCodeValid(code):
				return closeAt(ws.StatusProtocolError, end)
			case !utf8.Valid(p[2:]):
				return closeAt(ws.StatusInvalidFramePayloadData, end)
			}
			return closeAt(code, end)
		case op == ws.OpContinuation:
			frag = append(frag, p...)
			if fin {
				op, m := fragOp, frag
				fragOp, frag = 0, nil
				if !deliver(op, m) {
					return r
				}
			}
		case fin:
			if !deliver(op, p) {
				return r
			}
		default:
			fragOp, frag = op, p
		}
	}
}

// modelCloseCodeValid lists the close codes a client may send: RFC 6455's
// and the IANA registry's 1000-1003 and 1007-1014, and 3000-4999.
func modelCloseCodeValid(c ws.StatusCode) bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

type fuzzSeed struct {
	name  string
	data  []byte
	split uint16
}

func cat(fs ...wstest.Frame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.Encode()...)
	}
	return b
}

// fuzzSeeds are the seed inputs; testdata/fuzz/FuzzFrameReader holds the
// same ones as files.
func fuzzSeeds() []fuzzSeed {
	return []fuzzSeed{
		{"text", cat(wstest.Frame{Op: ws.OpText, Payload: []byte("hello")}), 3},
		{"ping", cat(wstest.Frame{Op: ws.OpPing, Payload: []byte("ping!")}), 1},
		{"close with code", cat(wstest.Frame{Op: ws.OpClose, Payload: closePayload(1000, "bye")}), 4},
		{"unmasked", cat(wstest.Frame{Op: ws.OpText, Payload: []byte("hi"), Unmasked: true}), 0},
		{"rsv bits", cat(wstest.Frame{Op: ws.OpBinary, Payload: []byte("x"), Rsv: 2}), 1},
		{"64-bit length MSB", cat(wstest.Frame{Op: ws.OpBinary, Len64: 1 << 63}), 5},
		{"fragmented text", cat(
			wstest.Frame{Op: ws.OpText, Payload: []byte("caf\xc3"), NotFin: true},
			wstest.Frame{Op: ws.OpPing, Payload: []byte("mid")},
			wstest.Frame{Op: ws.OpContinuation, Payload: []byte("\xa9!")},
		), 9},
		{"continuation without start", cat(wstest.Frame{Op: ws.OpContinuation, Payload: []byte("x")}), 2},
		{"126-byte ping", cat(wstest.Frame{Op: ws.OpPing, Payload: bytes.Repeat([]byte("p"), 126)}), 3},
		{"too big", cat(wstest.Frame{Op: ws.OpBinary, Payload: make([]byte, fuzzMaxMessage+1)})[:8], 2},
		{"partial frame", cat(wstest.Frame{Op: ws.OpText, Payload: []byte("incomplete")})[:9], 4},
	}
}

// TestFuzzSeedsMatchFiles keeps testdata/fuzz/FuzzFrameReader in step with
// fuzzSeeds.
func TestFuzzSeedsMatchFiles(t *testing.T) {
	for _, s := range fuzzSeeds() {
		t.Run(s.name, func(t *testing.T) {
			name := "testdata/fuzz/FuzzFrameReader/seed-" + seedFileName(s.name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", s.data, s.split)
			got, err := readFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s:\n%s\nwant:\n%s", name, got, want)
			}
		})
	}
}

func seedFileName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

// TestModelSanity pins the model on streams whose outcome is known, so that a
// wrong model cannot make the fuzz target pass vacuously.
func TestModelSanity(t *testing.T) {
	probe := fuzzProbe.Encode()
	tests := []struct {
		name   string
		stream []byte
		out    []string
		msgs   int
	}{
		{"text then probe", append(cat(wstest.Frame{Op: ws.OpText, Payload: []byte("a")}), probe...), []string{`pong("probe")`}, 1},
		{"partial swallows probe", append(cat(wstest.Frame{Op: ws.OpText, Payload: []byte("abcdefghijklmnopq")})[:8], probe...), nil, 0},
		{"close echo", cat(wstest.Frame{Op: ws.OpClose, Payload: closePayload(3000, "")}), []string{"close(3000)"}, 0},
		{"bad utf-8", cat(wstest.Frame{Op: ws.OpText, Payload: []byte{0xff}}), []string{"close(1007)"}, 0},
		{"too big", cat(wstest.Frame{Op: ws.OpBinary, Payload: make([]byte, 2000)})[:8], []string{"close(1009)"}, 0},
		{"unmasked", cat(wstest.Frame{Op: ws.OpBinary, Unmasked: true}), []string{"close(1002)"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runModel(tc.stream)
			var out []string
			for _, f := range r.out {
				out = append(out, f.String())
			}
			if fmt.Sprint(out) != fmt.Sprint(tc.out) || len(r.msgs) != tc.msgs {
				t.Fatalf("model: out %v msgs %d, want %v %d", out, len(r.msgs), tc.out, tc.msgs)
			}
		})
	}
}

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}
