package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/protocol"
)

func TestAppendDelivery(t *testing.T) {
	tests := []struct {
		name  string
		dst   string
		topic string
		seq   uint64
		data  string
		want  string
	}{
		{name: "object", topic: "news", seq: 17, data: `{"a":1}`, want: `{"topic":"news","seq":17,"data":{"a":1}}`},
		{name: "seq_zero", topic: "t", seq: 0, data: `1`, want: `{"topic":"t","seq":0,"data":1}`},
		{name: "seq_one", topic: "t", seq: 1, data: `null`, want: `{"topic":"t","seq":1,"data":null}`},
		{name: "seq_max", topic: "t", seq: math.MaxUint64, data: `"x"`, want: `{"topic":"t","seq":18446744073709551615,"data":"x"}`},
		{name: "data_verbatim", topic: "a.b:c-d_e", seq: 9, data: `{"b":1,"a":1.50}`, want: `{"topic":"a.b:c-d_e","seq":9,"data":{"b":1,"a":1.50}}`},
		{name: "appends_after_prefix", dst: "PREFIX", topic: "t", seq: 2, data: `[]`, want: `PREFIX{"topic":"t","seq":2,"data":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst []byte
			if tt.dst != "" {
				dst = []byte(tt.dst)
			}
			got := protocol.AppendDelivery(dst, tt.topic, tt.seq, []byte(tt.data))
			if string(got) != tt.want {
				t.Fatalf("AppendDelivery = %s, want %s", got, tt.want)
			}
			if n := protocol.DeliveryLen(tt.topic, tt.seq, []byte(tt.data)); n != len(got)-len(tt.dst) {
				t.Errorf("DeliveryLen = %d, AppendDelivery wrote %d bytes", n, len(got)-len(tt.dst))
			}
			if !json.Valid(got[len(tt.dst):]) {
				t.Errorf("delivery is not valid JSON: %s", got)
			}
		})
	}
}

// TestDeliveryLenDigits checks DeliveryLen around every power of ten, where
// the seq gains a digit.
func TestDeliveryLenDigits(t *testing.T) {
	seqs := []uint64{0, math.MaxUint64, math.MaxUint64 - 1}
	for p := uint64(1); p <= 1e19; p *= 10 {
		seqs = append(seqs, p-1, p, p+1)
		if p == 1e19 {
			break
		}
	}
	for _, seq := range seqs {
		t.Run(fmt.Sprint(seq), func(t *testing.T) {
			got := protocol.AppendDelivery(nil, "topic", seq, []byte(`{}`))
			if n := protocol.DeliveryLen("topic", seq, []byte(`{}`)); n != len(got) {
				t.Fatalf("DeliveryLen = %d, len(AppendDelivery) = %d", n, len(got))
			}
		})
	}
}

// dataForPayload returns a JSON string value that makes the delivery payload
// of (topic, seq) exactly n bytes long.
func dataForPayload(t *testing.T, topic string, seq uint64, n int) []byte {
	t.Helper()
	overhead := protocol.DeliveryLen(topic, seq, nil)
	fill := n - overhead - 2
	if fill < 0 {
		t.Fatalf("payload %d is shorter than the envelope (%d)", n, overhead)
	}
	return []byte(`"` + strings.Repeat("x", fill) + `"`)
}

func TestNewDeliveryFrame(t *testing.T) {
	tests := []struct {
		name       string
		payload    int
		wantHeader []byte
	}{
		{name: "payload_40", payload: 40, wantHeader: []byte{0x81, 40}},
		{name: "payload_125_short_form", payload: 125, wantHeader: []byte{0x81, 125}},
		{name: "payload_126_16bit_form", payload: 126, wantHeader: []byte{0x81, 126, 0x00, 126}},
		{name: "payload_65535_16bit_max", payload: 65535, wantHeader: []byte{0x81, 126, 0xFF, 0xFF}},
		{name: "payload_65536_64bit_form", payload: 65536, wantHeader: []byte{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
		{name: "payload_over_max_pooled", payload: 1<<20 + 3, wantHeader: []byte{0x81, 127, 0, 0, 0, 0, 0, 0x10, 0x00, 0x03}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const topic, seq = "t", uint64(1)
			data := dataForPayload(t, topic, seq, tt.payload)
			f := protocol.NewDeliveryFrame(topic, seq, data)
			defer f.Release()

			if !bytes.HasPrefix(f.B, tt.wantHeader) {
				t.Fatalf("header = % x, want % x", f.B[:min(len(f.B), 10)], tt.wantHeader)
			}
			payload := f.B[len(tt.wantHeader):]
			if len(payload) != tt.payload {
				t.Fatalf("payload is %d bytes, want %d", len(payload), tt.payload)
			}
			if want := protocol.AppendDelivery(nil, topic, seq, data); !bytes.Equal(payload, want) {
				t.Fatalf("payload differs from AppendDelivery output")
			}

			// Cross-check with an independent frame reader.
			r := bytes.NewReader(f.B)
			h, err := ws.ReadHeader(r)
			if err != nil {
				t.Fatalf("ws.ReadHeader: %v", err)
			}
			if !h.Fin || h.OpCode != ws.OpText || h.Masked || h.Rsv != 0 {
				t.Errorf("header = %+v, want a final unmasked text frame", h)
			}
			if h.Length != int64(tt.payload) || r.Len() != tt.payload {
				t.Errorf("header length = %d, remaining bytes = %d, want %d", h.Length, r.Len(), tt.payload)
			}
		})
	}
}

func TestAppendAck(t *testing.T) {
	tests := []struct {
		name string
		id   int64
		want string
	}{
		{name: "zero", id: 0, want: `{"op":"ack","id":0}`},
		{name: "positive", id: 42, want: `{"op":"ack","id":42}`},
		{name: "negative", id: -7, want: `{"op":"ack","id":-7}`},
		{name: "max", id: math.MaxInt64, want: `{"op":"ack","id":9223372036854775807}`},
		{name: "min", id: math.MinInt64, want: `{"op":"ack","id":-9223372036854775808}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.AppendAck([]byte("x"), tt.id)
			if string(got) != "x"+tt.want {
				t.Fatalf("AppendAck = %s, want x%s", got, tt.want)
			}
			var v struct {
				Op string `json:"op"`
				ID int64  `json:"id"`
			}
			if err := json.Unmarshal(got[1:], &v); err != nil || v.Op != "ack" || v.ID != tt.id {
				t.Fatalf("round trip = %+v, %v", v, err)
			}
		})
	}
}

// errorReply is the decoded shape of an error reply.
type errorReply struct {
	Op      string          `json:"op"`
	ID      json.RawMessage `json:"id"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

func TestAppendError(t *testing.T) {
	tests := []struct {
		name    string
		hasID   bool
		id      int64
		code    string
		msg     string
		want    string // exact output; "" to only check validity and round trip
		wantMsg string // decoded message; defaults to msg
	}{
		{name: "with_id", hasID: true, id: 5, code: protocol.CodeBadTopic, msg: "bad name",
			want: `{"op":"error","id":5,"code":"bad_topic","message":"bad name"}`},
		{name: "with_id_zero", hasID: true, id: 0, code: protocol.CodeLimit, msg: "x",
			want: `{"op":"error","id":0,"code":"limit","message":"x"}`},
		{name: "with_negative_id", hasID: true, id: -3, code: protocol.CodeForbidden, msg: "no",
			want: `{"op":"error","id":-3,"code":"forbidden","message":"no"}`},
		{name: "without_id", code: protocol.CodeBadJSON, msg: "invalid JSON",
			want: `{"op":"error","code":"bad_json","message":"invalid JSON"}`},
		{name: "id_ignored_without_hasID", hasID: false, id: 99, code: protocol.CodeInternal, msg: "",
			want: `{"op":"error","code":"internal","message":""}`},
		{name: "quotes_and_backslash", hasID: true, id: 1, code: protocol.CodeBadRequest, msg: `say "hi" \ bye`,
			want: `{"op":"error","id":1,"code":"bad_request","message":"say \"hi\" \\ bye"}`},
		{name: "control_chars", code: protocol.CodeBadRequest, msg: "a\x00b\nc\td\x1fe\r",
			want: `{"op":"error","code":"bad_request","message":"a\u0000b\u000ac\u0009d\u001fe\u000d"}`},
		{name: "del_is_literal", code: protocol.CodeBadRequest, msg: "a\x7fb",
			want: "{\"op\":\"error\",\"code\":\"bad_request\",\"message\":\"a\x7fb\"}"},
		{name: "valid_utf8_kept", code: protocol.CodeBadTopic, msg: "café 😀 \u2028",
			want: "{\"op\":\"error\",\"code\":\"bad_topic\",\"message\":\"café 😀 \u2028\"}"},
		{name: "invalid_utf8_byte", code: protocol.CodeBadRequest, msg: "a\xffb",
			want: `{"op":"error","code":"bad_request","message":"a\ufffdb"}`, wantMsg: "a\uFFFDb"},
		{name: "truncated_multibyte", code: protocol.CodeBadRequest, msg: "x\xe2\x82",
			want: `{"op":"error","code":"bad_request","message":"x\ufffd\ufffd"}`, wantMsg: "x\uFFFD\uFFFD"},
		{name: "utf16_surrogate_in_utf8", code: protocol.CodeBadRequest, msg: "\xed\xa0\x80",
			wantMsg: "\uFFFD\uFFFD\uFFFD"},
		{name: "everything_at_once", hasID: true, id: 77, code: protocol.CodeTooLarge,
			msg: "\"\\\x01\xc3\x28 ok \xf0\x9f\x98\x80 \xf0\x9f\x98"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.AppendError([]byte("keep"), tt.hasID, tt.id, tt.code, tt.msg)
			if !bytes.HasPrefix(got, []byte("keep")) {
				t.Fatalf("dst prefix lost: %q", got)
			}
			got = got[len("keep"):]
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("AppendError =\n  %s\nwant\n  %s", got, tt.want)
			}
			checkErrorReply(t, got, tt.hasID, tt.id, tt.code, tt.msg)
			if tt.wantMsg != "" {
				var r errorReply
				_ = json.Unmarshal(got, &r)
				if r.Message != tt.wantMsg {
					t.Errorf("message = %q, want %q", r.Message, tt.wantMsg)
				}
			}
		})
	}
}

// checkErrorReply asserts that b is valid JSON and decodes to the given
// fields, the message with each invalid UTF-8 byte as U+FFFD.
func checkErrorReply(t testing.TB, b []byte, hasID bool, id int64, code, msg string) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("output is not valid JSON: %q", b)
	}
	var r errorReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("unmarshal %q: %v", b, err)
	}
	if r.Op != "error" || r.Code != code {
		t.Errorf("op, code = %q, %q, want error, %q", r.Op, r.Code, code)
	}
	if hasID != (r.ID != nil) {
		t.Errorf("id present = %v, want %v", r.ID != nil, hasID)
	}
	if hasID && string(r.ID) != fmt.Sprint(id) {
		t.Errorf("id = %s, want %d", r.ID, id)
	}
	if want := string([]rune(msg)); r.Message != want {
		t.Errorf("message round trip = %q, want %q", r.Message, want)
	}
}

func TestEncodersDoNotAllocate(t *testing.T) {
	data := []byte(`{"price":101.25,"sym":"ABC"}`)
	dst := make([]byte, 0, 512)
	subs := []protocol.SubState{
		{Topic: "quotes.ABC", Pos: engine.Position{Epoch: "q3F8aZ0-x_c", Seq: 12}, Since: true, Recovered: true},
		{Topic: "quotes.XYZ", Pos: engine.Position{Epoch: "F", Seq: 0}},
		{Topic: "news", Pos: engine.Position{Epoch: "G", Seq: 1 << 40}, Since: true},
		{Topic: "prices.ABC", Pos: engine.Position{Epoch: "H", Seq: 7}, Conflate: true},
	}
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "AppendDelivery", fn: func() { dst = protocol.AppendDelivery(dst[:0], "quotes.ABC", 123456, data) }},
		{name: "AppendAck", fn: func() { dst = protocol.AppendAck(dst[:0], 99) }},
		{name: "AppendError", fn: func() {
			dst = protocol.AppendError(dst[:0], true, 7, protocol.CodeBadTopic, "bad \"topic\"\n\xff")
		}},
		{name: "DeliveryLen", fn: func() { _ = protocol.DeliveryLen("quotes.ABC", 123456, data) }},
		{name: "AppendSubscribeAck", fn: func() { dst = protocol.AppendSubscribeAck(dst[:0], 7, subs) }},
		{name: "AppendSubscribed", fn: func() { dst = protocol.AppendSubscribed(dst[:0], subs) }},
		{name: "AppendReset", fn: func() {
			dst = protocol.AppendReset(dst[:0], "quotes.ABC", engine.Position{Epoch: "q3F8aZ0-x_c", Seq: 40})
		}},
		{name: "AppendPublishAnswer", fn: func() { dst = protocol.AppendPublishAnswer(dst[:0], 17, "q3F8aZ0-x_c", 3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tt.fn); allocs != 0 {
				t.Fatalf("%s allocates %.1f times per call, want 0", tt.name, allocs)
			}
		})
	}
}

// subReply is the decoded shape of a subscribe ack, a subscribed message
// and a reset.
type subReply struct {
	Op        string              `json:"op"`
	ID        *int64              `json:"id"`
	Topic     *string             `json:"topic"`
	Positions map[string]posReply `json:"positions"`
	Recovered map[string]bool     `json:"recovered"`
}

// posReply is the decoded shape of one position.
type posReply struct {
	Epoch    string `json:"epoch"`
	Seq      uint64 `json:"seq"`
	Conflate bool   `json:"conflate"`
}

// decodeReply decodes b strictly into a subReply and returns it with the
// names of its top-level members.
func decodeReply(t *testing.T, b []byte) (subReply, []string) {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		t.Fatalf("output is not a JSON object: %s: %v", b, err)
	}
	var r subReply
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	keys := slices.Sorted(maps.Keys(members))
	return r, keys
}

func TestAppendSubscribeAckAndSubscribed(t *testing.T) {
	type P = engine.Position
	tests := []struct {
		name    string
		subs    []protocol.SubState
		members string // exact output after {"op":...,"id":N, or {"op":"subscribed",
		wantRec map[string]bool
	}{
		{name: "no_subs", subs: nil, members: `"positions":{}}`},
		{name: "one_without_since",
			subs:    []protocol.SubState{{Topic: "a", Pos: P{Epoch: "E", Seq: 12}}},
			members: `"positions":{"a":{"epoch":"E","seq":12}}}`},
		{name: "recovered_but_no_since_is_not_written",
			subs:    []protocol.SubState{{Topic: "a", Pos: P{Epoch: "E", Seq: 12}, Recovered: true}},
			members: `"positions":{"a":{"epoch":"E","seq":12}}}`},
		{name: "brief_example",
			subs: []protocol.SubState{
				{Topic: "a", Pos: P{Epoch: "E", Seq: 12}, Since: true, Recovered: true},
				{Topic: "b", Pos: P{Epoch: "F", Seq: 0}},
			},
			members: `"positions":{"a":{"epoch":"E","seq":12},"b":{"epoch":"F","seq":0}},"recovered":{"a":true}}`,
			wantRec: map[string]bool{"a": true}},
		{name: "since_only_on_later_subs",
			subs: []protocol.SubState{
				{Topic: "a", Pos: P{Epoch: "E", Seq: 1}},
				{Topic: "b", Pos: P{Epoch: "F", Seq: 2}, Since: true},
				{Topic: "c", Pos: P{Epoch: "G", Seq: 3}, Since: true, Recovered: true},
			},
			members: `"positions":{"a":{"epoch":"E","seq":1},"b":{"epoch":"F","seq":2},"c":{"epoch":"G","seq":3}},"recovered":{"b":false,"c":true}}`,
			wantRec: map[string]bool{"b": false, "c": true}},
		{name: "order_given_and_odd_names",
			subs: []protocol.SubState{
				{Topic: "z:y.x", Pos: P{Epoch: "q3F8aZ0-x_c", Seq: 1<<64 - 1}, Since: true},
				{Topic: "A-_", Pos: P{Epoch: "0", Seq: 9}, Since: true},
			},
			members: `"positions":{"z:y.x":{"epoch":"q3F8aZ0-x_c","seq":18446744073709551615},"A-_":{"epoch":"0","seq":9}},"recovered":{"z:y.x":false,"A-_":false}}`,
			wantRec: map[string]bool{"z:y.x": false, "A-_": false}},
		{name: "conflated_topic",
			subs:    []protocol.SubState{{Topic: "prices.a", Pos: P{Epoch: "E", Seq: 12}, Conflate: true}},
			members: `"positions":{"prices.a":{"epoch":"E","seq":12,"conflate":true}}}`},
		{name: "conflated_among_others_with_since",
			subs: []protocol.SubState{
				{Topic: "a", Pos: P{Epoch: "E", Seq: 1}, Since: true, Recovered: true},
				{Topic: "p", Pos: P{Epoch: "F", Seq: 0}, Conflate: true, Since: true, Recovered: true},
				{Topic: "c", Pos: P{Epoch: "G", Seq: 3}},
			},
			members: `"positions":{"a":{"epoch":"E","seq":1},"p":{"epoch":"F","seq":0,"conflate":true},"c":{"epoch":"G","seq":3}},"recovered":{"a":true,"p":true}}`,
			wantRec: map[string]bool{"a": true, "p": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantPos := map[string]posReply{}
			for _, s := range tt.subs {
				wantPos[s.Topic] = posReply{Epoch: s.Pos.Epoch, Seq: s.Pos.Seq, Conflate: s.Conflate}
			}
			wantKeys := []string{"op", "positions"}
			if tt.wantRec != nil {
				wantKeys = append(wantKeys, "recovered")
			}
			for _, id := range []int64{0, -3, math.MaxInt64} {
				got := protocol.AppendSubscribeAck([]byte("x"), id, tt.subs)
				want := `x{"op":"ack","id":` + fmt.Sprint(id) + `,` + tt.members
				if string(got) != want {
					t.Fatalf("AppendSubscribeAck =\n  %s\nwant\n  %s", got, want)
				}
				r, keys := decodeReply(t, got[1:])
				if r.Op != "ack" || r.ID == nil || *r.ID != id || !maps.Equal(r.Positions, wantPos) || !maps.Equal(r.Recovered, tt.wantRec) {
					t.Errorf("ack decodes to %+v", r)
				}
				if want := slices.Sorted(slices.Values(append([]string{"id"}, wantKeys...))); !slices.Equal(keys, want) {
					t.Errorf("ack members %q, want %q", keys, want)
				}
			}
			got := protocol.AppendSubscribed([]byte("x"), tt.subs)
			if want := `x{"op":"subscribed",` + tt.members; string(got) != want {
				t.Fatalf("AppendSubscribed =\n  %s\nwant\n  %s", got, want)
			}
			r, keys := decodeReply(t, got[1:])
			if r.Op != "subscribed" || !maps.Equal(r.Positions, wantPos) || !maps.Equal(r.Recovered, tt.wantRec) {
				t.Errorf("subscribed decodes to %+v", r)
			}
			if !slices.Equal(keys, wantKeys) {
				t.Errorf("subscribed members %q, want %q", keys, wantKeys)
			}
		})
	}
}

func TestAppendReset(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		pos   engine.Position
		want  string
	}{
		{name: "brief_example", topic: "a", pos: engine.Position{Epoch: "E", Seq: 40},
			want: `{"op":"reset","topic":"a","positions":{"a":{"epoch":"E","seq":40}}}`},
		{name: "seq_zero_new_epoch", topic: "x:y.z-_", pos: engine.Position{Epoch: "q3F8aZ0-x_c", Seq: 0},
			want: `{"op":"reset","topic":"x:y.z-_","positions":{"x:y.z-_":{"epoch":"q3F8aZ0-x_c","seq":0}}}`},
		{name: "seq_max", topic: "t", pos: engine.Position{Epoch: "E", Seq: math.MaxUint64},
			want: `{"op":"reset","topic":"t","positions":{"t":{"epoch":"E","seq":18446744073709551615}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.AppendReset([]byte("x"), tt.topic, tt.pos)
			if string(got) != "x"+tt.want {
				t.Fatalf("AppendReset =\n  %s\nwant\n  x%s", got, tt.want)
			}
			r, keys := decodeReply(t, got[1:])
			if r.Op != "reset" || r.Topic == nil || *r.Topic != tt.topic || !maps.Equal(r.Positions, map[string]posReply{tt.topic: {Epoch: tt.pos.Epoch, Seq: tt.pos.Seq}}) {
				t.Errorf("reset decodes to %+v", r)
			}
			if want := []string{"op", "positions", "topic"}; !slices.Equal(keys, want) {
				t.Errorf("members %q, want %q", keys, want)
			}
		})
	}
}

func TestAppendPublishAnswer(t *testing.T) {
	tests := []struct {
		name       string
		seq        uint64
		epoch      string
		recipients int
		want       string
	}{
		// The body server/api.go wrote by hand (before its trailing "\n").
		{name: "brief_example", seq: 17, epoch: "E", recipients: 3, want: `{"seq":17,"epoch":"E","recipients":3}`},
		{name: "no_recipients", seq: 1, epoch: "q3F8aZ0-x_c", recipients: 0, want: `{"seq":1,"epoch":"q3F8aZ0-x_c","recipients":0}`},
		{name: "large", seq: math.MaxUint64, epoch: strings.Repeat("Z", 32), recipients: math.MaxInt32,
			want: `{"seq":18446744073709551615,"epoch":"` + strings.Repeat("Z", 32) + `","recipients":2147483647}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.AppendPublishAnswer([]byte("x"), tt.seq, tt.epoch, tt.recipients)
			if string(got) != "x"+tt.want {
				t.Fatalf("AppendPublishAnswer =\n  %s\nwant\n  x%s", got, tt.want)
			}
			var r struct {
				Seq        uint64 `json:"seq"`
				Epoch      string `json:"epoch"`
				Recipients int    `json:"recipients"`
			}
			dec := json.NewDecoder(bytes.NewReader(got[1:]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil || r.Seq != tt.seq || r.Epoch != tt.epoch || r.Recipients != tt.recipients {
				t.Errorf("decodes to %+v, %v", r, err)
			}
		})
	}
}

func TestCommandErrorUnwrap(t *testing.T) {
	sentinels := []error{protocol.ErrBadJSON, protocol.ErrUnknownOp, protocol.ErrBadTopic, protocol.ErrBadRequest}
	for _, s := range sentinels {
		t.Run(s.Error(), func(t *testing.T) {
			var err error = &protocol.CommandError{Code: "c", Message: "m", Err: s}
			for _, other := range sentinels {
				if got := errors.Is(err, other); got != (other == s) {
					t.Errorf("errors.Is(%v, %v) = %v", err, other, got)
				}
			}
			if err.Error() != "protocol: c: m" {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func BenchmarkAppendDelivery(b *testing.B) {
	data := []byte(`{"price":101.25,"sym":"ABC","ts":1700000000123}`)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(protocol.DeliveryLen("quotes.ABC", 1<<40, data)))
	for b.Loop() {
		dst = protocol.AppendDelivery(dst[:0], "quotes.ABC", 1<<40, data)
	}
}

func BenchmarkNewDeliveryFrame(b *testing.B) {
	data := []byte(`{"price":101.25,"sym":"ABC","ts":1700000000123}`)
	b.ReportAllocs()
	for b.Loop() {
		protocol.NewDeliveryFrame("quotes.ABC", 1<<40, data).Release()
	}
}

func BenchmarkAppendError(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = protocol.AppendError(dst[:0], true, 12345, protocol.CodeBadTopic, "topic names are 1-128 bytes of [A-Za-z0-9_.:-]")
	}
}

// TestAppendDeliveryFrame: back-to-back delivery frames read back, in
// order, as the deliveries NewDeliveryFrame makes, within DeliveryFrameLen.
func TestAppendDeliveryFrame(t *testing.T) {
	data := [][]byte{[]byte(`1`), bytes.Repeat([]byte("x"), 200), bytes.Repeat([]byte("y"), 70000)}
	var buf []byte
	limit := 0
	for i, d := range data {
		limit += protocol.DeliveryFrameLen("t", uint64(i+1), d)
		buf = protocol.AppendDeliveryFrame(buf, "t", uint64(i+1), d)
	}
	if len(buf) > limit {
		t.Fatalf("%d bytes, over DeliveryFrameLen's %d", len(buf), limit)
	}
	r := bytes.NewReader(buf)
	for i, d := range data {
		f := protocol.NewDeliveryFrame("t", uint64(i+1), d)
		want := append([]byte(nil), f.B...)
		f.Release()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d differs from NewDeliveryFrame's (%v)", i, err)
		}
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left over", r.Len())
	}
}
