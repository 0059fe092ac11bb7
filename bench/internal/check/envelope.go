// Package check owns what the load tool verifies about each delivery: the
// cheap parse of the v1 delivery envelope, the per (connection, topic) seq
// bookkeeping (missing, duplicate, out-of-order), and the per-message table
// of when the last subscriber got each message.
//
// check never touches a socket; the client engine feeds it payloads and seq
// numbers and reads the counts back.
package check

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Delivery is one parsed delivery envelope. Topic and Data alias the
// payload they were parsed from.
type Delivery struct {
	// Topic is the topic name as sent.
	Topic []byte
	// Seq is the topic's sequence number.
	Seq uint64
	// Data is the published JSON, verbatim.
	Data []byte
	// SentNs is the "t" field of Data (send time, Unix nanoseconds), or 0
	// when Data has none.
	SentNs int64
}

const (
	envTopic = `{"topic":"`
	envSeq   = `,"seq":`
	envData  = `,"data":`
	fieldT   = `"t":`
)

// ParseDelivery parses {"topic":..,"seq":N,"data":..}. It takes the exact
// byte layout wspushd writes without allocating, and falls back to
// encoding/json for any other spelling of the same object. ok is false for
// anything that is not a delivery (an ack, an error reply, bad JSON).
func ParseDelivery(b []byte) (d Delivery, ok bool) {
	if d, ok = parseExact(b); ok {
		return d, true
	}
	return parseSlow(b)
}

// parseExact handles the canonical layout of protocol.AppendDelivery.
func parseExact(b []byte) (Delivery, bool) {
	var d Delivery
	if !bytes.HasPrefix(b, []byte(envTopic)) || len(b) < len(envTopic)+1 || b[len(b)-1] != '}' {
		return d, false
	}
	rest := b[len(envTopic):]
	q := bytes.IndexByte(rest, '"')
	if q <= 0 {
		return d, false
	}
	d.Topic = rest[:q]
	if bytes.IndexByte(d.Topic, '\\') >= 0 {
		return d, false
	}
	rest = rest[q+1:]
	if !bytes.HasPrefix(rest, []byte(envSeq)) {
		return d, false
	}
	rest = rest[len(envSeq):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 {
		return d, false
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return d, false
	}
	d.Seq = seq
	rest = rest[n:]
	if !bytes.HasPrefix(rest, []byte(envData)) {
		return d, false
	}
	d.Data = rest[len(envData) : len(rest)-1]
	if len(d.Data) == 0 {
		return d, false
	}
	d.SentNs = SentTime(d.Data)
	return d, true
}

// parseSlow decodes any JSON spelling of a delivery.
func parseSlow(b []byte) (Delivery, bool) {
	var v struct {
		Topic *string         `json:"topic"`
		Seq   *uint64         `json:"seq"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Topic == nil || v.Seq == nil || len(v.Data) == 0 {
		return Delivery{}, false
	}
	d := Delivery{Topic: []byte(*v.Topic), Seq: *v.Seq, Data: v.Data}
	d.SentNs = SentTime(d.Data)
	return d, true
}

// SentTime returns the integer after the first `"t":` in data (the send
// time the publisher put there), or 0 when there is none. The publisher
// writes "t" first in its object, so the search is short.
func SentTime(data []byte) int64 {
	i := bytes.Index(data, []byte(fieldT))
	if i < 0 {
		return 0
	}
	rest := data[i+len(fieldT):]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	var v int64
	n := 0
	for n < len(rest) && n < 19 && rest[n] >= '0' && rest[n] <= '9' {
		v = v*10 + int64(rest[n]-'0')
		n++
	}
	if n == 0 {
		return 0
	}
	return v
}

// AppendData appends the data object the publisher sends: {"t":sentNs,"p":"xxx…"}
// padded with 'x' so that the object is at least size bytes long.
func AppendData(dst []byte, sentNs int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, sentNs, 10)
	dst = append(dst, `,"p":"`...)
	pad := size - (len(dst) - start) - 2
	for i := 0; i < pad; i++ {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}
