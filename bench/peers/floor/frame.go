package main

import (
	"encoding/binary"
	"errors"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	finBit     = 0x80
	maskBit    = 0x80
	maxControl = 125
)

// appendFrame appends an unmasked FIN frame header for a payload of n
// bytes, using the 7-, 16- or 64-bit length form; the caller appends the
// payload.
func appendFrame(dst []byte, op byte, n int) []byte {
	switch {
	case n <= 125:
		return append(dst, finBit|op, byte(n))
	case n <= 0xFFFF:
		return append(dst, finBit|op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, finBit|op, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

var (
	errUnmasked     = errors.New("client frame not masked")
	errReserved     = errors.New("reserved bits or opcode")
	errBadControl   = errors.New("control frame fragmented or longer than 125 bytes")
	errFrameTooLong = errors.New("frame length has the high bit set")
)

// Parser states.
const (
	stHeader = iota
	stSkip
	stControl
)

// frameParser is a streaming parser for client frames that keeps only what
// the peer needs: control frames (<= 125 bytes) are buffered and unmasked;
// data frame payloads are counted off and discarded, never buffered, and
// fragmentation is not tracked since data is ignored anyway.
type frameParser struct {
	state int
	hdr   [14]byte // 2 + up to 8 length bytes + 4 mask bytes
	hn    int      // header bytes held
	hlen  int      // full header length once the first 2 bytes are in
	op    byte
	mask  [4]byte
	skip  uint64 // data payload bytes still to discard
	ctl   [maxControl]byte
	cn    int // control payload bytes held
	clen  int // control payload length
}

// next consumes a prefix of p. When that completes a control frame it
// returns the opcode and the unmasked payload (valid until the next call);
// otherwise op is 0 and all of p was consumed. An error is a protocol
// violation: the connection should be closed.
func (f *frameParser) next(p []byte) (used int, op byte, payload []byte, err error) {
	for used < len(p) {
		switch f.state {
		case stSkip:
			k := min(uint64(len(p)-used), f.skip)
			used += int(k)
			f.skip -= k
			if f.skip == 0 {
				f.reset()
			}
		case stControl:
			k := copy(f.ctl[f.cn:f.clen], p[used:])
			used += k
			f.cn += k
		default:
			f.hdr[f.hn] = p[used]
			f.hn++
			used++
			if f.hn == 2 {
				if f.hdr[1]&maskBit == 0 {
					return used, 0, nil, errUnmasked
				}
				f.hlen = 2 + 4
				switch f.hdr[1] & 0x7F {
				case 126:
					f.hlen += 2
				case 127:
					f.hlen += 8
				}
			}
			if f.hlen > 0 && f.hn == f.hlen {
				if err := f.headerDone(); err != nil {
					return used, 0, nil, err
				}
			}
		}
		if f.state == stControl && f.cn == f.clen {
			op, payload = f.op, f.ctl[:f.clen]
			for i := range payload {
				payload[i] ^= f.mask[i&3]
			}
			f.reset()
			return used, op, payload, nil
		}
	}
	return used, 0, nil, nil
}

func (f *frameParser) reset() {
	f.state, f.hn, f.hlen = stHeader, 0, 0
}

func (f *frameParser) headerDone() error {
	b0, b1 := f.hdr[0], f.hdr[1]
	if b0&0x70 != 0 { // RSV1-3: no extensions are negotiated
		return errReserved
	}
	var n uint64
	switch b1 & 0x7F {
	case 126:
		n = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(f.hdr[2:10])
		if n>>63 != 0 {
			return errFrameTooLong
		}
	default:
		n = uint64(b1 & 0x7F)
	}
	copy(f.mask[:], f.hdr[f.hlen-4:f.hlen])
	switch op := b0 & 0x0F; {
	case op == opClose || op == opPing || op == opPong:
		if b0&finBit == 0 || n > maxControl {
			return errBadControl
		}
		f.op, f.cn, f.clen, f.state = op, 0, int(n), stControl
	case op == opContinuation || op == opText || op == opBinary:
		if n == 0 {
			f.reset()
		} else {
			f.skip, f.state = n, stSkip
		}
	default:
		return errReserved
	}
	return nil
}
