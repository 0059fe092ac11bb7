package wsclient

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// msg is one thing the parser reported.
type msg struct {
	op ws.OpCode
	p  string
}

// stream builds a server stream covering every length encoding, control
// frames, and a fragmented message with a ping between its fragments.
func stream() ([]byte, []msg) {
	var b []byte
	var want []msg
	add := func(op ws.OpCode, p string) {
		b = AppendServerFrame(b, op, true, []byte(p))
		want = append(want, msg{op, p})
	}
	add(ws.OpText, `{"topic":"a","seq":1,"data":{"t":1}}`)
	add(ws.OpText, "")
	add(ws.OpBinary, strings.Repeat("m", 126)) // 16-bit length
	add(ws.OpText, strings.Repeat("l", 70000)) // 64-bit length
	add(ws.OpPing, "are you there")
	b = AppendServerFrame(b, ws.OpText, false, []byte("frag-1,"))
	b = AppendServerFrame(b, ws.OpPing, true, []byte("mid"))
	want = append(want, msg{ws.OpPing, "mid"})
	b = AppendServerFrame(b, ws.OpContinuation, false, []byte("frag-2,"))
	b = AppendServerFrame(b, ws.OpContinuation, true, []byte("frag-3"))
	want = append(want, msg{ws.OpText, "frag-1,frag-2,frag-3"})
	add(ws.OpPong, "")
	add(ws.OpClose, "\x03\xe8bye")
	return b, want
}

func feed(t *testing.T, p *Parser, chunks [][]byte) []msg {
	t.Helper()
	var got []msg
	for _, c := range chunks {
		if err := p.Feed(c, func(op ws.OpCode, payload []byte) error {
			got = append(got, msg{op, string(payload)})
			return nil
		}); err != nil {
			t.Fatalf("feed: %v", err)
		}
	}
	return got
}

func same(a, b []msg) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d messages, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("message %d: op %d len %d, want op %d len %d", i, a[i].op, len(a[i].p), b[i].op, len(b[i].p))
		}
	}
	return nil
}

func TestParserWhole(t *testing.T) {
	b, want := stream()
	var p Parser
	if err := same(feed(t, &p, [][]byte{b}), want); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() != 0 {
		t.Fatalf("%d bytes left over", p.Buffered())
	}
}

// TestParserSplitEverywhere cuts the stream in two at every byte of the
// headers region and at a spread of points in the big payload.
func TestParserSplitEverywhere(t *testing.T) {
	b, want := stream()
	for cut := 0; cut <= len(b); cut++ {
		if cut > 400 && cut < len(b)-400 && cut%997 != 0 {
			continue // the middle of the big payload: sample it
		}
		var p Parser
		got := feed(t, &p, [][]byte{b[:cut], b[cut:]})
		if err := same(got, want); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
}

// TestParserByteByByte feeds one byte at a time (a smaller stream: the big
// frame would make this quadratic).
func TestParserByteByByte(t *testing.T) {
	var b []byte
	b = AppendServerFrame(b, ws.OpText, true, []byte(strings.Repeat("x", 300)))
	b = AppendServerFrame(b, ws.OpPing, true, []byte("p"))
	b = AppendServerFrame(b, ws.OpText, false, []byte("a"))
	b = AppendServerFrame(b, ws.OpContinuation, true, []byte("b"))
	want := []msg{{ws.OpText, strings.Repeat("x", 300)}, {ws.OpPing, "p"}, {ws.OpText, "ab"}}
	var chunks [][]byte
	for i := range b {
		chunks = append(chunks, b[i:i+1])
	}
	var p Parser
	if err := same(feed(t, &p, chunks), want); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() != 0 {
		t.Fatalf("%d bytes left over", p.Buffered())
	}
}

// TestParserPayloadReuse checks that a payload handed out from the
// caller's buffer is not retained: the caller may overwrite it after Feed.
func TestParserPayloadReuse(t *testing.T) {
	frame := AppendServerFrame(nil, ws.OpText, true, []byte("hello"))
	var p Parser
	buf := append([]byte(nil), frame[:4]...)
	feed(t, &p, [][]byte{buf})
	copy(buf, "ZZZZ") // the caller reuses its read buffer
	got := feed(t, &p, [][]byte{frame[4:]})
	if len(got) != 1 || got[0].p != "hello" {
		t.Fatalf("got %+v", got)
	}
}

func TestParserErrors(t *testing.T) {
	masked := AppendClientFrame(nil, ws.OpText, []byte("hi"), [4]byte{1, 2, 3, 4})
	bigPing := AppendServerFrame(nil, ws.OpPing, true, bytes.Repeat([]byte("p"), 126))
	rsv := AppendServerFrame(nil, ws.OpText, true, []byte("x"))
	rsv[0] |= 0x40
	cont := AppendServerFrame(nil, ws.OpContinuation, true, []byte("x"))
	fragPing := AppendServerFrame(nil, ws.OpPing, false, nil)
	twoStarts := append(AppendServerFrame(nil, ws.OpText, false, []byte("a")), AppendServerFrame(nil, ws.OpText, true, []byte("b"))...)
	badOp := AppendServerFrame(nil, ws.OpCode(3), true, nil)
	top := []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}
	for name, tc := range map[string]struct {
		b    []byte
		want error
		max  int
	}{
		"masked":            {masked, ErrMaskedServerFrame, 0},
		"long ping":         {bigPing, ErrProtocol, 0},
		"reserved bits":     {rsv, ErrProtocol, 0},
		"lone continuation": {cont, ErrProtocol, 0},
		"fragmented ping":   {fragPing, ErrProtocol, 0},
		"two starts":        {twoStarts, ErrProtocol, 0},
		"unknown opcode":    {badOp, ErrProtocol, 0},
		"top length bit":    {top, ErrProtocol, 0},
		"too large":         {AppendServerFrame(nil, ws.OpText, true, make([]byte, 11)), ErrTooLarge, 10},
	} {
		p := Parser{MaxMessage: tc.max}
		err := p.Feed(tc.b, func(ws.OpCode, []byte) error { return nil })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestClientFrameIsMasked(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	f := AppendClientFrame(nil, ws.OpPong, []byte("payload"), key)
	h, err := ws.ReadHeader(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Masked || h.Mask != key || h.OpCode != ws.OpPong || h.Length != 7 || !h.Fin {
		t.Fatalf("header %+v", h)
	}
	p := append([]byte(nil), f[len(f)-7:]...)
	ws.Cipher(p, key, 0)
	if string(p) != "payload" {
		t.Fatalf("unmasked %q", p)
	}
	if k1, k2 := MaskKey(), MaskKey(); k1 == k2 {
		// 1 in 2^32: treat as a broken generator.
		t.Fatalf("two equal random keys %v", k1)
	}
}
