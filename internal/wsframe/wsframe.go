// Package wsframe encodes the header of a server-to-client WebSocket frame:
// final, unmasked, with the shortest length encoding (RFC 6455 §5.2). It is
// the one encoder behind wsconn's replies and protocol's deliveries; it
// never touches a socket or a payload.
package wsframe

import "github.com/gobwas/ws"

// AppendHeader appends the header of a final, unmasked frame with opcode op
// and an n-byte payload.
func AppendHeader(dst []byte, op ws.OpCode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	}
	u := uint64(n)
	return append(dst, b0, 127,
		byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
		byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}
