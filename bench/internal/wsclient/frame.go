// Package wsclient is the load tool's client engine: it dials and upgrades
// WebSocket connections (handshake written by hand), watches their sockets
// with the project's own netpoll (no goroutine per connection), parses the
// server's frames incrementally on a small fixed set of worker goroutines
// (inflating permessage-deflate messages when that was negotiated),
// answers pings and closes, and feeds every delivery to the checks (seq
// order, latency histogram, per-message table).
//
// wsclient owns the client sockets from dial to close. It knows the v1
// delivery envelope only through package check.
package wsclient

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wsframe"
)

// Frame parse errors.
var (
	// ErrMaskedServerFrame: the server masked a frame (RFC 6455 forbids it).
	ErrMaskedServerFrame = errors.New("wsclient: masked frame from server")
	// ErrProtocol: any other framing violation.
	ErrProtocol = errors.New("wsclient: protocol error")
	// ErrTooLarge: a message over the parser's limit.
	ErrTooLarge = errors.New("wsclient: message too large")
)

// DefaultMaxMessage is the largest message a Parser accepts by default.
const DefaultMaxMessage = 16 << 20

// keepCap is the largest partial-frame buffer kept after it empties; bigger
// ones are dropped so that an idle connection holds little memory.
const keepCap = 4096

// Parser parses a stream of server-to-client frames incrementally: bytes may
// arrive split anywhere. Fragmented messages are reassembled; control frames
// may come between fragments. The zero value is ready to use. Not safe for
// concurrent use.
type Parser struct {
	// MaxMessage limits a message's size after reassembly (and after
	// inflating); 0 means DefaultMaxMessage.
	MaxMessage int
	// Deflate says permessage-deflate was negotiated: RSV1 on the first
	// frame of a data message marks it compressed, and the message is
	// inflated before it is handed on. Without it RSV1 is an error.
	Deflate bool

	pend     []byte // bytes of an incomplete frame
	frag     []byte // payload of a fragmented message so far
	fragOp   ws.OpCode
	fragZ    bool // the fragmented message is compressed
	inFrag   bool
	inflated int64 // compressed messages inflated
}

// header is a parsed frame header.
type header struct {
	fin  bool
	rsv1 bool // compressed (permessage-deflate), on a message's first frame
	op   ws.OpCode
	len  int
	size int // header bytes
}

// limit is the largest message p accepts.
func (p *Parser) limit() int {
	if p.MaxMessage <= 0 {
		return DefaultMaxMessage
	}
	return p.MaxMessage
}

// checkRSV checks a frame's reserved bits: RSV2 and RSV3 never, RSV1 only
// with Deflate and on the first frame of a data message.
func (p *Parser) checkRSV(h header, rsv byte) error {
	switch {
	case rsv&0x30 != 0:
		return fmt.Errorf("%w: reserved bits RSV2/RSV3 set", ErrProtocol)
	case rsv == 0:
		return nil
	case !p.Deflate:
		return fmt.Errorf("%w: RSV1 set without permessage-deflate", ErrProtocol)
	case h.op.IsControl() || h.op == ws.OpContinuation:
		return fmt.Errorf("%w: RSV1 set on a control frame or a continuation", ErrProtocol)
	}
	return nil
}

// parseHeader reads a frame header at the start of b. ok is false when b
// holds too few bytes for the whole header.
func (p *Parser) parseHeader(b []byte) (h header, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h.fin = b[0]&0x80 != 0
	h.op = ws.OpCode(b[0] & 0x0f)
	if err := p.checkRSV(h, b[0]&0x70); err != nil {
		return h, false, err
	}
	h.rsv1 = b[0]&0x40 != 0
	if b[1]&0x80 != 0 {
		return h, false, ErrMaskedServerFrame
	}
	n := uint64(b[1] & 0x7f)
	h.size = 2
	switch n {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		n = uint64(binary.BigEndian.Uint16(b[2:4]))
		h.size = 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		n = binary.BigEndian.Uint64(b[2:10])
		h.size = 10
		if n>>63 != 0 {
			return h, false, fmt.Errorf("%w: 64-bit length with top bit set", ErrProtocol)
		}
	}
	if n > uint64(p.limit()) {
		return h, false, ErrTooLarge
	}
	h.len = int(n)
	if h.op.IsControl() && (!h.fin || h.len > 125) {
		return h, false, fmt.Errorf("%w: bad control frame", ErrProtocol)
	}
	if !h.op.IsControl() && h.op != ws.OpContinuation && h.op != ws.OpText && h.op != ws.OpBinary {
		return h, false, fmt.Errorf("%w: unknown opcode %d", ErrProtocol, h.op)
	}
	if h.op.IsControl() && h.op != ws.OpClose && h.op != ws.OpPing && h.op != ws.OpPong {
		return h, false, fmt.Errorf("%w: unknown opcode %d", ErrProtocol, h.op)
	}
	return h, true, nil
}

// Feed parses data, calling fn once per complete message (text or binary,
// reassembled) and once per control frame, in stream order. payload is only
// valid during the call. An error from fn stops parsing and is returned;
// the bytes after that frame are dropped. Incomplete trailing bytes are
// kept for the next Feed.
func (p *Parser) Feed(data []byte, fn func(op ws.OpCode, payload []byte) error) error {
	buf := data
	if len(p.pend) > 0 {
		p.pend = append(p.pend, data...)
		buf = p.pend
	}
	off := 0
	for {
		h, ok, err := p.parseHeader(buf[off:])
		if err != nil {
			p.reset()
			return err
		}
		if !ok || len(buf)-off-h.size < h.len {
			break
		}
		payload := buf[off+h.size : off+h.size+h.len]
		off += h.size + h.len
		if err := p.frame(h, payload, fn); err != nil {
			p.reset()
			return err
		}
	}
	rest := buf[off:]
	switch {
	case len(rest) == 0:
		if cap(p.pend) > keepCap {
			p.pend = nil
		} else {
			p.pend = p.pend[:0]
		}
	case len(p.pend) > 0: // buf is p.pend: move the tail to the front
		n := copy(p.pend, rest)
		p.pend = p.pend[:n]
	default:
		p.pend = append(p.pend[:0], rest...)
	}
	return nil
}

// frame handles one complete frame.
func (p *Parser) frame(h header, payload []byte, fn func(ws.OpCode, []byte) error) error {
	switch {
	case h.op.IsControl():
		return fn(h.op, payload)
	case h.op == ws.OpContinuation:
		if !p.inFrag {
			return fmt.Errorf("%w: continuation without a start", ErrProtocol)
		}
		if len(p.frag)+len(payload) > p.limit() {
			return ErrTooLarge
		}
		p.frag = append(p.frag, payload...)
		if !h.fin {
			return nil
		}
		op, msg, z := p.fragOp, p.frag, p.fragZ
		p.inFrag, p.frag, p.fragZ = false, nil, false
		return p.message(op, msg, z, fn)
	default:
		if p.inFrag {
			return fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
		}
		if h.fin {
			return p.message(h.op, payload, h.rsv1, fn)
		}
		p.inFrag, p.fragOp, p.fragZ = true, h.op, h.rsv1
		p.frag = append([]byte(nil), payload...)
		return nil
	}
}

// message hands a whole data message to fn, inflated first when it came
// compressed.
func (p *Parser) message(op ws.OpCode, payload []byte, compressed bool, fn func(ws.OpCode, []byte) error) error {
	if !compressed {
		return fn(op, payload)
	}
	p.inflated++
	return inflate(op, payload, p.limit(), fn)
}

func (p *Parser) reset() {
	p.pend, p.frag, p.inFrag, p.fragZ = nil, nil, false, false
}

// Inflated reports how many compressed messages the parser inflated.
func (p *Parser) Inflated() int64 { return p.inflated }

// Buffered reports how many bytes of incomplete frames the parser holds.
func (p *Parser) Buffered() int { return len(p.pend) + len(p.frag) }

// AppendClientFrame appends one final client frame of op with payload,
// masked with key as RFC 6455 requires of clients.
func AppendClientFrame(dst []byte, op ws.OpCode, payload []byte, key [4]byte) []byte {
	dst = wsframe.Append(dst, 0x80|byte(op), uint64(len(payload)), &key)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], key, 0)
	return dst
}

// AppendServerFrame appends one unmasked final frame, as a server sends it.
// The load tool never sends these; tests use them to build server streams.
func AppendServerFrame(dst []byte, op ws.OpCode, fin bool, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	return append(wsframe.Append(dst, b0, uint64(len(payload)), nil), payload...)
}
