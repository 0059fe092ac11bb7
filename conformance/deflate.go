package conformance

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

// The runner's side of permessage-deflate (RFC 7692): the offer, the check
// of the server's answer, compressing the client's frames and inflating
// the server's.

// deflateTail ends a sync-flushed deflate stream; a frame leaves it out.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// withOffer returns h plus the extension offer (h itself without one).
func withOffer(h http.Header, offer string) http.Header {
	if offer == "" {
		return h
	}
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Sec-WebSocket-Extensions", offer)
	return h
}

// negotiated checks the server's Sec-WebSocket-Extensions against what the
// case expects, and reports whether permessage-deflate is on.
func negotiated(cl *wstest.Client, c Case) (bool, error) {
	got := cl.Resp.Header.Get("Sec-WebSocket-Extensions")
	on := strings.HasPrefix(got, "permessage-deflate")
	switch {
	case c.Offer == "" && got != "":
		return false, fmt.Errorf("upgrade: the server answered extensions %q to no offer", got)
	case c.Deflate && !on:
		return false, fmt.Errorf("upgrade: offer %q declined (extensions %q), want permessage-deflate accepted", c.Offer, got)
	case !c.Deflate && got != "":
		return false, fmt.Errorf("upgrade: offer %q accepted as %q, want it declined", c.Offer, got)
	case on && !strings.Contains(got, "client_no_context_takeover") && strings.Contains(c.Offer, "client_no_context_takeover"):
		// Not an error in RFC 7692, but this server promises it.
		return false, fmt.Errorf("upgrade: %q without client_no_context_takeover", got)
	}
	return on, nil
}

// unzip turns a read frame into a got, inflating a compressed data frame.
// RSV1 without the extension, or on a control frame, is a failure.
func (s *session) unzip(h ws.Header, p []byte) got {
	if h.Rsv == 0 {
		return got{op: h.OpCode, p: p}
	}
	if h.Rsv != 4 || !s.deflate || h.OpCode.IsControl() || h.OpCode == ws.OpContinuation {
		return got{err: fmt.Errorf("server frame (opcode %d) with reserved bits %03b", h.OpCode, h.Rsv)}
	}
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail))))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return got{err: fmt.Errorf("server's compressed frame does not inflate: %v", err)}
	}
	return got{op: h.OpCode, p: out, zipped: true}
}

// zipped compresses p as one frame of op with RSV1 (no context takeover:
// every message on its own).
func zipped(op ws.OpCode, p []byte) F {
	return F{Op: op, Rsv: 4, Payload: deflate(p)}
}

// zippedParts is p compressed, then cut into n fragments: RSV1 on the
// first only (RFC 7692 §6.1).
func zippedParts(p []byte, n int) []F {
	fs := fragmented(ws.OpText, split(deflate(p), n)...)
	fs[0].Rsv = 4
	return fs
}

func deflate(p []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.DefaultCompression) // only fails for a bad level
	fw.Write(p)
	fw.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail)
}

// Deliver expects the delivery of data on topic; zip 1 requires it
// compressed, -1 plain, 0 either.
func Deliver(topic string, data []byte, zip int8) Event {
	return Event{Kind: EvDeliver, Code: topic, Payload: data, Zipped: zip}
}

func deliverString(e Event) string {
	how := ""
	switch e.Zipped {
	case 1:
		how = " compressed"
	case -1:
		how = " plain"
	}
	return fmt.Sprintf("delivery on %s of %d bytes%s", e.Code, len(e.Payload), how)
}

// deliveryMatches checks a delivery: topic, data byte for byte, and the
// compression the event asks for.
func deliveryMatches(e Event, g got) bool {
	var d struct {
		Topic string          `json:"topic"`
		Data  json.RawMessage `json:"data"`
	}
	if g.op != ws.OpText || json.Unmarshal(g.p, &d) != nil {
		return false
	}
	if (e.Zipped == 1 && !g.zipped) || (e.Zipped == -1 && g.zipped) {
		return false
	}
	return d.Topic == e.Code && bytes.Equal(d.Data, e.Payload)
}
