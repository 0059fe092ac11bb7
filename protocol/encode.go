package protocol

import (
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wsframe"
)

// Envelope pieces of a delivery: {"topic":"a","seq":17,"data":...}, or
// {"user":"42","seq":17,"data":...} on a user's stream.
const (
	envTopic = `{"topic":"`
	envUser  = `{"user":"`
	envSeq   = `","seq":`
	envData  = `,"data":`
	envEnd   = `}`
)

// DeliveryLen is the length of the delivery envelope AppendDelivery writes.
func DeliveryLen(topic string, seq uint64, data []byte) int {
	// A user's stream "@42" is written "user":"42": one byte shorter
	// than its name, and envUser one shorter than envTopic.
	head := len(envTopic) + len(topic)
	if _, ok := UserOf(topic); ok {
		head -= 2
	}
	return head + len(envSeq) + uintLen(seq) + len(envData) + len(data) + len(envEnd)
}

// AppendDelivery appends {"topic":topic,"seq":seq,"data":data}, or for a
// user's stream (UserStream) {"user":id,"seq":seq,"data":data}. topic must
// be a valid topic or stream name (it needs no escaping) and data valid
// JSON.
func AppendDelivery(dst []byte, topic string, seq uint64, data []byte) []byte {
	if id, ok := UserOf(topic); ok {
		dst = append(dst, envUser...)
		dst = append(dst, id...)
	} else {
		dst = append(dst, envTopic...)
		dst = append(dst, topic...)
	}
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

// DeliveryFrameLen is at least the size AppendDeliveryFrame adds.
func DeliveryFrameLen(topic string, seq uint64, data []byte) int {
	return ws.MaxHeaderSize + DeliveryLen(topic, seq, data)
}

// AppendDeliveryFrame appends one delivery as a complete server text frame
// (header and envelope), for a buffer that carries several back to back
// (recovered messages).
func AppendDeliveryFrame(dst []byte, topic string, seq uint64, data []byte) []byte {
	dst = wsframe.AppendHeader(dst, ws.OpText, DeliveryLen(topic, seq, data))
	return AppendDelivery(dst, topic, seq, data)
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

// SubState is one topic of a subscribe reply (protocol v1.1): the topic's
// position when the subscription took effect and, when the client asked to
// recover it, whether the missed messages follow.
type SubState struct {
	Topic     string          // a valid topic name (written without escaping)
	Pos       engine.Position // the topic's epoch and seq S at subscription
	Since     bool            // a recovery was asked for this topic
	Recovered bool            // with Since: the messages after the client's seq follow
	// Conflate says the topic is conflated (--topic-policy): a slow
	// connection gets its latest message, not every one, so its seq may
	// jump. Written as "conflate":true in the topic's position.
	Conflate bool
}

// AppendSubscribeAck appends the ack of a subscribe with an id (protocol
// v1.1):
//
//	{"op":"ack","id":1,"positions":{"a":{"epoch":"E","seq":12},"p":{"epoch":"F","seq":3,"conflate":true}},"recovered":{"a":true}}
//
// positions has a member per sub, in the order given, with "conflate":true
// for a sub with Conflate; recovered has a member per sub with Since, and
// is left out when no sub has Since. The topics must be distinct valid
// names and the epochs valid epochs.
func AppendSubscribeAck(dst []byte, id int64, subs []SubState) []byte {
	dst = append(dst, `{"op":"ack","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, ',')
	return appendSubStates(dst, subs)
}

// AppendSubscribed appends the reply to the subscriptions made at connect
// (protocol v1.1), the first frame after the 101 when the client asked for
// positions or recovery:
//
//	{"op":"subscribed","positions":{"a":{"epoch":"E","seq":12}},"recovered":{"a":false}}
//
// with the members of AppendSubscribeAck.
func AppendSubscribed(dst []byte, subs []SubState) []byte {
	dst = append(dst, `{"op":"subscribed",`...)
	return appendSubStates(dst, subs)
}

// appendSubStates appends the "positions" and "recovered" members of subs
// and the closing brace.
func appendSubStates(dst []byte, subs []SubState) []byte {
	dst = append(dst, `"positions":{`...)
	since := false
	for i := range subs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendPosition(dst, subs[i].Topic, subs[i].Pos, subs[i].Conflate)
		since = since || subs[i].Since
	}
	dst = append(dst, '}')
	if since {
		dst = append(dst, `,"recovered":{`...)
		first := true
		for i := range subs {
			if !subs[i].Since {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = append(dst, subs[i].Topic...)
			dst = append(dst, `":`...)
			dst = strconv.AppendBool(dst, subs[i].Recovered)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendPosition appends "topic":{"epoch":"E","seq":N}, or with conflate
// "topic":{"epoch":"E","seq":N,"conflate":true}.
func appendPosition(dst []byte, topic string, pos engine.Position, conflate bool) []byte {
	dst = append(dst, '"')
	dst = append(dst, topic...)
	dst = append(dst, `":{"epoch":"`...)
	dst = append(dst, pos.Epoch...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, pos.Seq, 10)
	if conflate {
		dst = append(dst, `,"conflate":true`...)
	}
	return append(dst, '}')
}

// AppendReset appends the notice that the node lost messages of topic it
// could not recover (protocol v1.1); pos is where live delivery continues:
//
//	{"op":"reset","topic":"a","positions":{"a":{"epoch":"E","seq":40}}}
//	{"op":"reset","user":"42","positions":{"@42":{"epoch":"E","seq":40}}}
//
// the second for a user's stream. topic must be a valid topic or stream
// name and pos.Epoch a valid epoch.
func AppendReset(dst []byte, topic string, pos engine.Position) []byte {
	if id, ok := UserOf(topic); ok {
		dst = append(dst, `{"op":"reset","user":"`...)
		dst = append(dst, id...)
	} else {
		dst = append(dst, `{"op":"reset","topic":"`...)
		dst = append(dst, topic...)
	}
	dst = append(dst, `","positions":{`...)
	dst = appendPosition(dst, topic, pos, false)
	return append(dst, "}}"...)
}

// AppendPublishAnswer appends the 200 body of POST /api/publish:
//
//	{"seq":17,"epoch":"E","recipients":3}
//
// without a trailing newline. epoch must be a valid epoch.
func AppendPublishAnswer(dst []byte, seq uint64, epoch string, recipients int) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"epoch":"`...)
	dst = append(dst, epoch...)
	dst = append(dst, `","recipients":`...)
	dst = strconv.AppendInt(dst, int64(recipients), 10)
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
