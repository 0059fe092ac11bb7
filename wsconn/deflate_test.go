package wsconn

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wstest"
)

// deflateHeader is the offer browsers send.
const browserOffer = "permessage-deflate; client_max_window_bits"

// dialOffer upgrades with a Sec-WebSocket-Extensions offer (none when empty).
func (ts *testServer) dialOffer(t testing.TB, offer string) (*wstest.Client, *connRec) {
	t.Helper()
	var h http.Header
	if offer != "" {
		h = http.Header{"Sec-WebSocket-Extensions": {offer}}
	}
	c, err := wstest.Dial(ts.addr, "/ws", h)
	if err != nil {
		t.Fatalf("dial with %q: %v", offer, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ts.h.lookup(t, c.Conn)
}

func TestDeflateNegotiation(t *testing.T) {
	const accepted = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"
	tests := []struct {
		name  string
		off   bool // compression off on the server
		offer string
		want  string // the response's Sec-WebSocket-Extensions
	}{
		{name: "browser offer", offer: browserOffer, want: accepted},
		{name: "bare offer", offer: "permessage-deflate", want: accepted},
		{name: "client asks no context takeover both ways", offer: "permessage-deflate; client_no_context_takeover; server_no_context_takeover", want: accepted},
		{name: "server off", off: true, offer: browserOffer},
		{name: "no offer"},
		{name: "other extension", offer: "x-webkit-deflate-frame"},
		{name: "smaller server window declined", offer: "permessage-deflate; server_max_window_bits=10"},
		{name: "unknown parameter declined", offer: "permessage-deflate; foo=1"},
		{name: "bad window value declined", offer: "permessage-deflate; client_max_window_bits=7"},
		{name: "duplicate parameter declined", offer: "permessage-deflate; server_no_context_takeover; server_no_context_takeover"},
		{name: "second offer taken", offer: "permessage-deflate; server_max_window_bits=9, permessage-deflate", want: accepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{Compression: !tt.off}, nil)
			c, rec := ts.dialOffer(t, tt.offer)
			if got := c.Resp.Header.Get("Sec-WebSocket-Extensions"); got != tt.want {
				t.Fatalf("Sec-WebSocket-Extensions = %q, want %q", got, tt.want)
			}
			if rec.conn.w.deflate != (tt.want != "") {
				t.Fatalf("deflate = %v", rec.conn.w.deflate)
			}
		})
	}
}

// inflateFrame undoes RFC 7692 on a received payload.
func inflateFrame(t testing.TB, p []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail))))
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// deflatePayload compresses p as a client would (sync flush, tail dropped).
func deflatePayload(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	fw.Write(p)
	fw.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail)
}

type deflateSendCase struct {
	name    string
	payload string
	zipped  bool
}

func (c deflateSendCase) zippedN() int {
	if c.zipped {
		return 1
	}
	return 0
}

// TestDeflateSend: one shared frame goes compressed to the clients that
// negotiated the extension (the same bytes, compressed once) and plain to
// the others; small and incompressible payloads go plain to everyone.
func TestDeflateSend(t *testing.T) {
	ts := startServer(t, Config{Compression: true}, nil)
	z1, r1 := ts.dialOffer(t, browserOffer)
	z2, r2 := ts.dialOffer(t, "permessage-deflate")
	plain, r3 := ts.dialOffer(t, "")
	random := make([]byte, 600)
	rand.Read(random)
	tests := []deflateSendCase{
		{name: "json over the minimum", payload: `{"prices":[` + strings.Repeat(`{"sym":"ABC","bid":101.25,"ask":101.5},`, 20) + `1]}`, zipped: true},
		{name: "under the minimum", payload: `{"sym":"ABC","bid":101.25}`},
		{name: "incompressible", payload: string(random)},
	}
	var zippedSoFar int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := textFrame(tt.payload)
			f.Retain(2)
			for _, rec := range []*connRec{r1, r2, r3} {
				if !rec.conn.Send(f) {
					t.Fatal("Send refused")
				}
			}
			var raw [][]byte
			for i, c := range []*wstest.Client{z1, z2} {
				h, p, err := c.Read(waitShort)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				zipped := h.Rsv&rsv1 != 0
				if zipped != tt.zipped {
					t.Fatalf("client %d: RSV1 = %v, want %v", i, zipped, tt.zipped)
				}
				got := p
				if zipped {
					got = inflateFrame(t, p)
					if len(p) >= len(tt.payload) {
						t.Fatalf("compressed %d bytes into %d", len(tt.payload), len(p))
					}
				}
				if string(got) != tt.payload {
					t.Fatalf("client %d got %d bytes, want the %d sent", i, len(got), len(tt.payload))
				}
				raw = append(raw, p)
			}
			// Counted after the write returns, so maybe after the read.
			zippedSoFar += 2 * int64(tt.zippedN())
			waitStat(t, "DeliveredCompressed", &ts.srv.Stats().DeliveredCompressed, zippedSoFar)
			if !bytes.Equal(raw[0], raw[1]) {
				t.Fatal("the two compressing clients got different bytes: compressed twice?")
			}
			h, p, err := plain.Read(waitShort)
			if err != nil || h.Rsv != 0 || string(p) != tt.payload {
				t.Fatalf("plain client: rsv %d, %d bytes, %v", h.Rsv, len(p), err)
			}
		})
	}
}

// TestDeflateReceive: compressed client messages are inflated (also
// fragmented ones), within MaxMessage; misuse of RSV1 fails the
// connection.
func TestDeflateReceive(t *testing.T) {
	const limit = 64 << 10
	text := []byte(strings.Repeat(`{"op":"publish","topic":"a","data":"hello"}`, 30))
	z := deflatePayload(t, text)
	zeros := deflatePayload(t, make([]byte, 4*limit))
	badUTF8 := deflatePayload(t, []byte("ok \xff\xfe"))
	tests := []struct {
		name   string
		offer  string
		frames []wstest.Frame
		want   []byte // the message OnMessage gets; nil for a failure
		code   ws.StatusCode
	}{
		{name: "one frame", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpText, Rsv: 4, Payload: z}}, want: text},
		{name: "fragmented", offer: browserOffer, frames: []wstest.Frame{
			{Op: ws.OpText, Rsv: 4, NotFin: true, Payload: z[:5]},
			{Op: ws.OpPing, Payload: []byte("in between")},
			{Op: ws.OpContinuation, NotFin: true, Payload: z[5:9]},
			{Op: ws.OpContinuation, Payload: z[9:]}}, want: text},
		{name: "uncompressed message on a deflate connection", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpText, Payload: []byte("plain")}}, want: []byte("plain")},
		{name: "inflates past the limit", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpText, Rsv: 4, Payload: zeros}}, code: ws.StatusMessageTooBig},
		{name: "invalid utf-8 after inflating", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpText, Rsv: 4, Payload: badUTF8}}, code: ws.StatusInvalidFramePayloadData},
		{name: "not deflate data", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpText, Rsv: 4, Payload: []byte{0xff, 0xff, 0xff, 0x00}}}, code: ws.StatusInvalidFramePayloadData},
		{name: "rsv1 on a continuation", offer: browserOffer, frames: []wstest.Frame{
			{Op: ws.OpText, NotFin: true, Payload: []byte("a")},
			{Op: ws.OpContinuation, Rsv: 4, Payload: []byte("b")}}, code: ws.StatusProtocolError},
		{name: "rsv1 on a ping", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpPing, Rsv: 4}}, code: ws.StatusProtocolError},
		{name: "rsv1 without the extension", frames: []wstest.Frame{{Op: ws.OpText, Rsv: 4, Payload: z}}, code: ws.StatusProtocolError},
		{name: "rsv2 with the extension", offer: browserOffer, frames: []wstest.Frame{{Op: ws.OpText, Rsv: 2, Payload: []byte("x")}}, code: ws.StatusProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{Compression: true, MaxMessage: limit}, nil)
			c, rec := ts.dialOffer(t, tt.offer)
			send(t, c, tt.frames...)
			if tt.want == nil {
				expectClose(t, c, tt.code, "*")
				expectNoMsg(t, rec)
				return
			}
			if m := expectMsg(t, rec); m.Op != ws.OpText || !bytes.Equal(m.Payload, tt.want) {
				t.Fatalf("got %v, want %q", m, tt.want)
			}
		})
	}
}

// TestDeflateFrameAlt: the compressed encoding is made once per frame and
// goes back to the pool with it.
func TestDeflateFrameAlt(t *testing.T) {
	srv := &Server{cfg: Config{CompressionMinSize: 10}}
	f := textFrame(strings.Repeat("abcdefgh", 100))
	srv.prepareDeflate(f)
	z, ok := f.Alt()
	if !ok || len(z) == 0 || len(z) >= len(f.B) || z[0] != 0x80|0x40|byte(ws.OpText) {
		t.Fatalf("Alt = %d bytes (%v) of a %d-byte frame", len(z), ok, len(f.B))
	}
	srv.prepareDeflate(f)
	if z2, _ := f.Alt(); &z2[0] != &z[0] {
		t.Fatal("prepareDeflate compressed the frame a second time")
	}
	f.Release()
	small := textFrame("tiny")
	srv.prepareDeflate(small)
	if z, ok := small.Alt(); !ok || len(z) != 0 {
		t.Fatalf("a frame under the minimum: Alt = %q, %v; want tried and empty", z, ok)
	}
	small.Release()
	if b := deflateFrame(nil, 0); b != bpool.NoAlt {
		t.Fatal("deflateFrame of nothing")
	}
}

// BenchmarkDeflatePublish is the cost of one publish's compression: a
// 2 KB JSON delivery compressed into its shared frame's second encoding.
func BenchmarkDeflatePublish(b *testing.B) {
	srv := &Server{cfg: Config{CompressionMinSize: DefaultCompressionMinSize}}
	payload := `{"prices":[` + strings.Repeat(`{"sym":"ABC","bid":101.25,"ask":101.5},`, 50) + `1]}`
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		f := textFrame(payload)
		srv.prepareDeflate(f)
		f.Release()
	}
}

// FuzzInflate checks the inflate path of compressed client messages
// against compress/flate: any input is inflated to exactly what flate
// reads from it, refused as too big only when that is over the limit,
// refused as bad only when flate fails; and whatever a client compresses
// comes back whole within the limit.
func FuzzInflate(f *testing.F) {
	for _, s := range []string{"", "hello", `{"op":"subscribe","topics":["a"],"id":1}`, strings.Repeat("a", 5000)} {
		f.Add(deflatePayload(f, []byte(s)), uint16(1024))
		f.Add([]byte(s), uint16(64))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0x00}, uint16(100))
	f.Add(deflatePayload(f, make([]byte, 70000)), uint16(65535))
	f.Fuzz(func(t *testing.T, p []byte, limit uint16) {
		lim := int(limit)
		ref, refErr := io.ReadAll(io.LimitReader(flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail))), int64(lim)+1))
		if errors.Is(refErr, io.ErrUnexpectedEOF) {
			refErr = nil // a sync-flushed message ends without a final block
		}
		out, err := inflate(p, lim)
		switch {
		case err == nil:
			if !bytes.Equal(*out, ref) || len(*out) > lim {
				t.Fatalf("inflated %d bytes, flate reads %d (limit %d)", len(*out), len(ref), lim)
			}
			bpool.Put(out)
		case errors.Is(err, errInflateTooBig):
			if len(ref) <= lim {
				t.Fatalf("refused as over %d, flate reads %d bytes", lim, len(ref))
			}
		case errors.Is(err, errInflateBad):
			if refErr == nil && len(ref) <= lim {
				t.Fatalf("refused as bad, flate reads %d bytes without error", len(ref))
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		// What a client compresses comes back whole.
		back, err := inflate(deflatePayload(t, p), lim)
		switch {
		case len(p) > lim:
			if !errors.Is(err, errInflateTooBig) {
				t.Fatalf("%d bytes over the limit %d: %v", len(p), lim, err)
			}
		case err != nil || !bytes.Equal(*back, p):
			t.Fatalf("round trip of %d bytes: %v", len(p), err)
		default:
			bpool.Put(back)
		}
	})
}
