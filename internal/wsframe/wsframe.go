// Package wsframe encodes WebSocket frame headers (RFC 6455 §5.2) with the
// shortest length encoding, and owns the server's text frame: NewText is
// the one place a server text frame is framed, behind protocol's
// deliveries (encoded once per publish, shared by every recipient) and
// wsconn's replies. Append writes any other header (masked client frames,
// fragments, reserved bits) for the load tool and the test clients. It
// never touches a socket, and never looks inside a payload.
package wsframe

import (
	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/bpool"
)

// NewText returns a pooled frame holding one reference for the caller, with
// the header of a final, unmasked text frame for an n-byte payload written
// and room for the payload, which the caller appends to f.B.
func NewText(n int) *bpool.Frame {
	f := bpool.NewFrame(ws.MaxHeaderSize + n)
	f.B = AppendHeader(f.B, ws.OpText, n)
	return f
}

// AppendHeader appends the header of a final, unmasked frame with opcode op
// and an n-byte payload: what a server sends.
func AppendHeader(dst []byte, op ws.OpCode, n int) []byte {
	return Append(dst, 0x80|byte(op), uint64(n), nil)
}

// Append appends a frame header. b0 is the first byte as sent (FIN, the
// RSV bits and the opcode), n the payload length, and mask, when not nil,
// the masking key: the MASK bit is then set and the key follows the
// length, as a client must send it. The payload is the caller's to add
// (masked with ws.Cipher when mask is set).
func Append(dst []byte, b0 byte, n uint64, mask *[4]byte) []byte {
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, m|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, m|127,
			byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}
