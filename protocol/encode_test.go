package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gobwas/ws"

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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tt.fn); allocs != 0 {
				t.Fatalf("%s allocates %.1f times per call, want 0", tt.name, allocs)
			}
		})
	}
	t.Run("NewDeliveryFrame", func(t *testing.T) {
		if raceEnabled {
			t.Skip("sync.Pool drops Puts at random under -race")
		}
		protocol.NewDeliveryFrame("quotes.ABC", 1, data).Release() // warm up
		allocs := testing.AllocsPerRun(100, func() {
			protocol.NewDeliveryFrame("quotes.ABC", 2, data).Release()
		})
		if allocs != 0 {
			t.Fatalf("NewDeliveryFrame+Release allocates %.1f times per call, want 0", allocs)
		}
	})
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
