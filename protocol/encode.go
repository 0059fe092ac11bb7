package protocol

import (
	"strconv"
	"unicode/utf8"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wsframe"
)

// Envelope pieces of a delivery: {"topic":"a","seq":17,"data":...}.
const (
	envTopic = `{"topic":"`
	envSeq   = `","seq":`
	envData  = `,"data":`
	envEnd   = `}`
)

// DeliveryLen is the length of the delivery envelope AppendDelivery writes.
func DeliveryLen(topic string, seq uint64, data []byte) int {
	return len(envTopic) + len(topic) + len(envSeq) + uintLen(seq) + len(envData) + len(data) + len(envEnd)
}

// AppendDelivery appends {"topic":topic,"seq":seq,"data":data}. topic must be
// a valid topic name (it needs no escaping) and data valid JSON.
func AppendDelivery(dst []byte, topic string, seq uint64, data []byte) []byte {
	dst = append(dst, envTopic...)
	dst = append(dst, topic...)
	dst = append(dst, envSeq...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, envData...)
	dst = append(dst, data...)
	return append(dst, envEnd...)
}

// NewDeliveryFrame encodes one delivery as a complete server-to-client text
// frame in a pooled, shared Frame holding one reference for the caller.
func NewDeliveryFrame(topic string, seq uint64, data []byte) *bpool.Frame {
	f := wsframe.NewText(DeliveryLen(topic, seq, data))
	f.B = AppendDelivery(f.B, topic, seq, data)
	return f
}

// AppendAck appends {"op":"ack","id":id}.
func AppendAck(dst []byte, id int64) []byte {
	dst = append(dst, `{"op":"ack","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, '}')
}

// AppendError appends {"op":"error","id":id,"code":code,"message":msg}, the
// id only when hasID. code must be one of the Code constants; msg is escaped.
func AppendError(dst []byte, hasID bool, id int64, code, msg string) []byte {
	dst = append(dst, `{"op":"error",`...)
	if hasID {
		dst = append(dst, `"id":`...)
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, ',')
	}
	dst = append(dst, `"code":"`...)
	dst = append(dst, code...)
	dst = append(dst, `","message":`...)
	dst = appendJSONString(dst, msg)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func uintLen(u uint64) int {
	n := 1
	for u >= 10 {
		u /= 10
		n++
	}
	return n
}
