package wsclient

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/testutil"
)

// compress deflates p as a permessage-deflate sender does: a sync flush,
// its 00 00 ff ff tail stripped. With final the stream is closed instead
// (a final block, RFC 7692 §7.2.3.4), and nothing is stripped.
func compress(t *testing.T, p []byte, final bool) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(p); err != nil {
		t.Fatal(err)
	}
	if final {
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	z, ok := bytes.CutSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
	if !ok {
		t.Fatal("a sync flush without its tail")
	}
	return z
}

// rsv1 sets RSV1 on the frame at the start of f.
func rsv1(f []byte) []byte {
	f[0] |= 0x40
	return f
}

// compressedStream mixes compressed and plain messages, a compressed
// message in three fragments with a ping among them, an empty compressed
// message and one ended by a final block.
func compressedStream(t *testing.T) ([]byte, []msg) {
	var b []byte
	var want []msg
	big := strings.Repeat(`{"sym":"AAPL","bid":187.23,"ask":187.25},`, 2000) // > 64 KiB inflated
	for _, m := range []struct {
		op    ws.OpCode
		p     string
		z     bool
		final bool
	}{
		{ws.OpText, `{"topic":"a","seq":1,"data":{"t":1,"p":"` + strings.Repeat("x", 300) + `"}}`, true, false},
		{ws.OpText, `{"topic":"a","seq":2,"data":{"t":2}}`, false, false},
		{ws.OpBinary, big, true, false},
		{ws.OpText, "", true, false},
		{ws.OpText, strings.Repeat("final block ", 50), true, true},
	} {
		want = append(want, msg{m.op, m.p})
		if !m.z {
			b = AppendServerFrame(b, m.op, true, []byte(m.p))
			continue
		}
		b = append(b, rsv1(AppendServerFrame(nil, m.op, true, compress(t, []byte(m.p), m.final)))...)
	}
	z := compress(t, []byte(strings.Repeat("fragmented, ", 40)), false)
	b = append(b, rsv1(AppendServerFrame(nil, ws.OpText, false, z[:5]))...)
	b = AppendServerFrame(b, ws.OpPing, true, []byte("mid"))
	b = AppendServerFrame(b, ws.OpContinuation, false, z[5:9])
	b = AppendServerFrame(b, ws.OpContinuation, true, z[9:])
	want = append(want, msg{ws.OpPing, "mid"}, msg{ws.OpText, strings.Repeat("fragmented, ", 40)})
	return b, want
}

// TestParserInflates feeds a stream of compressed messages whole, split
// at every point of its first 600 bytes and a spread of the rest, and
// byte by byte through its start.
func TestParserInflates(t *testing.T) {
	b, want := compressedStream(t)
	p := Parser{Deflate: true}
	if err := same(feed(t, &p, [][]byte{b}), want); err != nil {
		t.Fatal(err)
	}
	if p.Inflated() != 5 || p.Buffered() != 0 {
		t.Fatalf("inflated %d, buffered %d; want 5, 0", p.Inflated(), p.Buffered())
	}
	for cut := 0; cut <= len(b); cut++ {
		if cut > 600 && cut%97 != 0 {
			continue
		}
		p := Parser{Deflate: true}
		if err := same(feed(t, &p, [][]byte{b[:cut], b[cut:]}), want); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	var chunks [][]byte
	for i := range min(len(b), 400) {
		chunks = append(chunks, b[i:i+1])
	}
	chunks = append(chunks, b[min(len(b), 400):])
	p = Parser{Deflate: true}
	if err := same(feed(t, &p, chunks), want); err != nil {
		t.Fatal(err)
	}
}

// TestParserInflateReuse inflates many messages one after the other (the
// pooled inflaters keep no context: each message stands alone) and checks
// that what fn got is right each time.
func TestParserInflateReuse(t *testing.T) {
	p := Parser{Deflate: true}
	for i := range 200 {
		m := fmt.Sprintf(`{"n":%d,"s":"%s"}`, i, strings.Repeat("ab", i))
		f := rsv1(AppendServerFrame(nil, ws.OpText, true, compress(t, []byte(m), false)))
		got := feed(t, &p, [][]byte{f})
		if len(got) != 1 || got[0].p != m {
			t.Fatalf("message %d: got %+v", i, got)
		}
	}
}

func TestParserDeflateErrors(t *testing.T) {
	z := compress(t, []byte(strings.Repeat("hello ", 100)), false)
	text := func(fin bool, p []byte) []byte { return AppendServerFrame(nil, ws.OpText, fin, p) }
	rsv2 := text(true, []byte("x"))
	rsv2[0] |= 0x20
	rsv3 := text(true, []byte("x"))
	rsv3[0] |= 0x10
	badCont := append(rsv1(text(false, z[:3])), rsv1(AppendServerFrame(nil, ws.OpContinuation, true, z[3:]))...)
	// A final block in the middle of the payload: bytes follow it.
	early := append(compress(t, []byte("short"), true), 0x42, 0x42)
	for name, tc := range map[string]struct {
		b       []byte
		deflate bool
		want    error
		max     int
	}{
		"RSV1 not negotiated":     {rsv1(text(true, z)), false, ErrProtocol, 0},
		"RSV1 on a ping":          {rsv1(AppendServerFrame(nil, ws.OpPing, true, nil)), true, ErrProtocol, 0},
		"RSV1 on a continuation":  {badCont, true, ErrProtocol, 0},
		"RSV2":                    {rsv2, true, ErrProtocol, 0},
		"RSV3":                    {rsv3, true, ErrProtocol, 0},
		"not deflate":             {rsv1(text(true, []byte{0xff, 0xff, 0xff, 0xff})), true, ErrInflate, 0},
		"final block then more":   {rsv1(text(true, early)), true, ErrInflate, 0},
		"inflates past the limit": {rsv1(text(true, z)), true, ErrTooLarge, 599},
	} {
		p := Parser{Deflate: tc.deflate, MaxMessage: tc.max}
		err := p.Feed(tc.b, func(ws.OpCode, []byte) error { return nil })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if Classify(err) != "protocol" {
			t.Errorf("%s: classified %q, want protocol", name, Classify(err))
		}
	}
	p := Parser{Deflate: true, MaxMessage: 600} // exactly the inflated size
	if err := p.Feed(rsv1(text(true, z)), func(ws.OpCode, []byte) error { return nil }); err != nil {
		t.Errorf("a message of exactly MaxMessage: %v", err)
	}
}

func TestCheckExtensions(t *testing.T) {
	for _, tc := range []struct {
		values  []string
		deflate bool
		want    error
	}{
		{nil, false, nil},
		{nil, true, ErrCompressionDeclined},
		{[]string{"permessage-deflate;server_no_context_takeover;client_no_context_takeover"}, true, nil},
		{[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true, nil},
		{[]string{`permessage-deflate; client_max_window_bits="10"; server_no_context_takeover; server_max_window_bits=15`}, true, nil},
		{[]string{"permessage-deflate; client_no_context_takeover"}, true, ErrBadExtension},
		{[]string{"permessage-deflate"}, true, ErrBadExtension},
		{[]string{"permessage-deflate; server_no_context_takeover; mystery"}, true, ErrBadExtension},
		{[]string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=16"}, true, ErrBadExtension},
		{[]string{"permessage-deflate; server_no_context_takeover"}, false, ErrBadExtension},
		{[]string{"x-webkit-deflate-frame"}, true, ErrBadExtension},
		{[]string{"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"}, true, ErrBadExtension},
	} {
		var vs [][]byte
		for _, v := range tc.values {
			vs = append(vs, []byte(v))
		}
		if err := checkExtensions(vs, tc.deflate); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%q (offered %v): %v, want %v", tc.values, tc.deflate, err, tc.want)
		}
	}
}

// TestHandshakeOffersDeflate checks the offer on the wire and what a
// declined or unacceptable answer does to the dial.
func TestHandshakeOffersDeflate(t *testing.T) {
	for name, tc := range map[string]struct {
		ext   string
		cause string
	}{
		"accepted": {"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n", "none"},
		"declined": {"", "compression_declined"},
		"takeover": {"Sec-WebSocket-Extensions: permessage-deflate\r\n", "bad_extension"},
	} {
		t.Run(name, func(t *testing.T) {
			offer := make(chan string, 1)
			addr, done := fakeServerReq(t, func(c net.Conn, key, ext string) error {
				offer <- ext
				_, err := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n" + tc.ext + "\r\n"))
				return err
			})
			dialFor(t, &Dialer{Addr: addr, Target: "/ws", Timeout: 10 * time.Second, Compression: true}, done, tc.cause)
			if got := <-offer; got != deflateOffer {
				t.Errorf("offered %q, want %q", got, deflateOffer)
			}
		})
	}
}

// fakeServerReq is fakeServer that also hands serve the request's
// Sec-WebSocket-Extensions.
func fakeServerReq(t *testing.T, serve func(c net.Conn, key, ext string) error) (string, <-chan error) {
	t.Helper()
	return fakeServerHTTP(t, func(c net.Conn, _ *bufio.Reader, req *http.Request) error {
		return serve(c, req.Header.Get("Sec-WebSocket-Key"), req.Header.Get("Sec-WebSocket-Extensions"))
	})
}

// TestEngineCompressed runs one compressed connection through the engine:
// compressed and plain deliveries in one stream; they are all checked, the
// compressed ones counted, and the wire bytes are what the server wrote.
func TestEngineCompressed(t *testing.T) {
	var stream []byte
	plain := 0
	for seq := uint64(1); seq <= 6; seq++ {
		f := delivery("a", seq)
		if seq%3 == 0 {
			stream = append(stream, f...)
			plain += len(f) - 2
			continue
		}
		// delivery's frames have a 2-byte header (payloads under 126).
		z := compress(t, f[2:], false)
		plain += len(f) - 2
		stream = append(stream, rsv1(AppendServerFrame(nil, ws.OpText, true, z))...)
	}
	addr, done := fakeServerReq(t, func(c net.Conn, key, ext string) error {
		if ext != deflateOffer {
			return fmt.Errorf("offer %q", ext)
		}
		head := "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + accept(key) +
			"\r\nSec-WebSocket-Extensions: permessage-deflate;server_no_context_takeover;client_no_context_takeover\r\n\r\n"
		if _, err := c.Write(append([]byte(head), stream[:7]...)); err != nil {
			return err
		}
		_, err := c.Write(stream[7:])
		return err
	})
	e, err := New(Config{Topics: []string{"a"}, TrackMessages: 8, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	d := &Dialer{Addr: addr, Timeout: 10 * time.Second, Compression: true}
	if _, _, err := e.Connect(context.Background(), d, []int{0}, true); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := e.Deliveries(); n != 6 {
			return fmt.Errorf("%d deliveries", n)
		}
		return nil
	})
	e.Stop()
	r := e.Result([]uint64{6})
	if c := r.Counts; c.Received != 6 || c.Missing != 0 || c.Dup != 0 || c.OOO != 0 {
		t.Errorf("counts %+v", c)
	}
	if r.Inflated != 4 || r.WireBytes != int64(len(stream)) || r.MessageBytes != int64(plain) {
		t.Errorf("inflated %d wire %d message bytes %d; want 4, %d, %d", r.Inflated, r.WireBytes, r.MessageBytes, len(stream), plain)
	}
}
