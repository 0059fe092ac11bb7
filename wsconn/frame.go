package wsconn

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// parseHeader parses one client frame header from the start of b. ok is false
// when b does not hold the whole header yet. n is the header's size.
func parseHeader(b []byte) (h ws.Header, n int, ok bool, err error) {
	if len(b) < 2 {
		return h, 0, false, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, false, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, false, ws.ErrHeaderLengthMSB
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true, nil
}

// parseClose validates a close frame's payload. It returns the code to echo
// (0 for an empty payload) or, when the payload breaks RFC 6455, the code to
// fail the connection with.
func parseClose(p []byte) (code ws.StatusCode, reason string, failCode ws.StatusCode) {
	switch len(p) {
	case 0:
		return 0, "", 0
	case 1:
		return 0, "", ws.StatusProtocolError
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(p))
	reason = string(p[2:])
	if !validCloseCode(code) {
		return code, reason, ws.StatusProtocolError
	}
	if !utf8.ValidString(reason) {
		return code, reason, ws.StatusInvalidFramePayloadData
	}
	return code, reason, 0
}

// validCloseCode reports whether a peer may send code: 1000-1003 and
// 1007-1014 (RFC 6455 §7.4.1 and the IANA registry it set up, which adds
// 1012-1014), and 3000-4999 for libraries and applications. Everything else
// (below 1000, 1004-1006, 1015, 1016-2999, 5000 and up) is a protocol error.
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
