package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

func TestParseHeader(t *testing.T) {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	tests := []struct {
		name string
		in   []byte
		want ws.Header
		n    int
	}{
		{
			name: "7-bit unmasked text",
			in:   []byte{0x81, 0x05},
			want: ws.Header{Fin: true, OpCode: ws.OpText, Length: 5},
			n:    2,
		},
		{
			name: "7-bit masked text",
			in:   append([]byte{0x81, 0x85}, mask[:]...),
			want: ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: 5},
			n:    6,
		},
		{
			name: "7-bit zero length close",
			in:   append([]byte{0x88, 0x80}, mask[:]...),
			want: ws.Header{Fin: true, OpCode: ws.OpClose, Masked: true, Mask: mask},
			n:    6,
		},
		{
			name: "7-bit max 125",
			in:   []byte{0x82, 125},
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 125},
			n:    2,
		},
		{
			name: "16-bit unmasked",
			in:   []byte{0x82, 126, 0x01, 0x00},
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256},
			n:    4,
		},
		{
			name: "16-bit masked max",
			in:   append([]byte{0x82, 0x80 | 126, 0xff, 0xff}, mask[:]...),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: mask, Length: 0xffff},
			n:    8,
		},
		{
			name: "64-bit unmasked",
			in:   []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0},
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 16},
			n:    10,
		},
		{
			name: "64-bit masked largest positive",
			in:   append([]byte{0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mask[:]...),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: mask, Length: 1<<63 - 1},
			n:    14,
		},
		{
			name: "not final continuation with rsv bits",
			in:   append([]byte{0x70, 0x80 | 3}, mask[:]...),
			want: ws.Header{OpCode: ws.OpContinuation, Rsv: 7, Masked: true, Mask: mask, Length: 3},
			n:    6,
		},
		{
			name: "reserved opcode is parsed, not judged",
			in:   []byte{0x8b, 0x00},
			want: ws.Header{Fin: true, OpCode: 0xb},
			n:    2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The complete header, then with payload bytes after it.
			for _, in := range [][]byte{tc.in, append(bytes.Clone(tc.in), "payload"...)} {
				h, n, ok, err := parseHeader(in)
				if err != nil || !ok {
					t.Fatalf("parseHeader(% x) = ok %v, err %v; want ok", in, ok, err)
				}
				if h != tc.want || n != tc.n {
					t.Fatalf("parseHeader(% x) = %+v, n=%d; want %+v, n=%d", in, h, n, tc.want, tc.n)
				}
			}
			// Every strict prefix is incomplete, without error.
			for i := range len(tc.in) {
				h, n, ok, err := parseHeader(tc.in[:i])
				if ok || err != nil || n != 0 {
					t.Fatalf("parseHeader(prefix %d of %d) = %+v, n=%d, ok=%v, err=%v; want incomplete", i, len(tc.in), h, n, ok, err)
				}
			}
		})
	}
}

func TestParseHeaderLengthMSB(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"unmasked", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"all ones", []byte{0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		// The length is judged as soon as it is there, before the mask.
		{"masked, mask missing", []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}},
		{"masked, mask present", []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, ok, err := parseHeader(tc.in)
			if !errors.Is(err, ws.ErrHeaderLengthMSB) || ok {
				t.Fatalf("parseHeader(% x) = ok %v, err %v; want ws.ErrHeaderLengthMSB", tc.in, ok, err)
			}
			for i := range 10 {
				if _, _, ok, err := parseHeader(tc.in[:i]); ok || err != nil {
					t.Fatalf("prefix %d: ok %v, err %v; want incomplete", i, ok, err)
				}
			}
		})
	}
}

// TestParseHeaderMatchesEncoder checks parseHeader against the test client's
// encoder for lengths around every encoding boundary.
func TestParseHeaderMatchesEncoder(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000} {
		for _, unmasked := range []bool{false, true} {
			t.Run(fmt.Sprintf("len=%d/unmasked=%v", n, unmasked), func(t *testing.T) {
				b := wstest.Frame{Op: ws.OpBinary, Payload: make([]byte, n), Unmasked: unmasked}.Encode()
				h, hn, ok, err := parseHeader(b)
				if !ok || err != nil {
					t.Fatalf("ok %v err %v", ok, err)
				}
				if h.Length != int64(n) || h.Masked == unmasked || hn+n != len(b) {
					t.Fatalf("header %+v, n=%d for %d-byte frame of %d payload", h, hn, len(b), n)
				}
			})
		}
	}
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func TestParseClose(t *testing.T) {
	type want struct {
		code     ws.StatusCode
		reason   string
		failCode ws.StatusCode
	}
	tests := []struct {
		name string
		in   []byte
		want want
	}{
		{"empty", nil, want{0, "", 0}},
		{"one byte", []byte{0x03}, want{0, "", 1002}},
		{"invalid utf-8 reason", closePayload(1000, "\xff\xfe"), want{1000, "\xff\xfe", 1007}},
		{"truncated utf-8 reason", closePayload(1000, "caf\xc3"), want{1000, "caf\xc3", 1007}},
		{"valid utf-8 reason", closePayload(1000, "café ☃"), want{1000, "café ☃", 0}},
		{"max reason", closePayload(1000, strings.Repeat("r", 123)), want{1000, strings.Repeat("r", 123), 0}},
		// An invalid code is judged before the reason...
		{"invalid code and utf-8", closePayload(999, "\xff"), want{999, "\xff", 1002}},
		{"registered code and bad utf-8", closePayload(1012, "\xff"), want{1012, "\xff", 1007}},
		// ...except codes from 5000 up, which gobwas/ws does not judge:
		// wsconn rejects them only after the reason passed.
		{"code 5000 and bad utf-8: the code fails first", closePayload(5000, "\xff"), want{5000, "\xff", 1002}},
	}
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	for _, c := range valid {
		tests = append(tests, struct {
			name string
			in   []byte
			want want
		}{fmt.Sprintf("valid %d", c), closePayload(c, "bye"), want{ws.StatusCode(c), "bye", 0}})
	}
	// 1012-1014 were registered with IANA after RFC 6455 and are valid.
	invalid := []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 5001, 65535}
	for _, c := range invalid {
		tests = append(tests, struct {
			name string
			in   []byte
			want want
		}{fmt.Sprintf("invalid %d", c), closePayload(c, ""), want{ws.StatusCode(c), "", 1002}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, reason, failCode := parseClose(tc.in)
			got := want{code, reason, failCode}
			if got != tc.want {
				t.Fatalf("parseClose(% x) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNewCloseFrame(t *testing.T) {
	tests := []struct {
		name       string
		code       ws.StatusCode
		reason     string
		wantReason string
	}{
		{"no code", 0, "ignored", ""},
		{"code only", 1000, "", ""},
		{"code and reason", 1008, "slow consumer", "slow consumer"},
		{"reason truncated to 123 bytes", 1001, strings.Repeat("x", 200), strings.Repeat("x", 123)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCloseFrame(tc.code, tc.reason)
			defer f.Release()
			r := bytes.NewReader(f.B)
			h, err := ws.ReadHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			if h.OpCode != ws.OpClose || !h.Fin || h.Masked || h.Length > ws.MaxControlFramePayloadSize {
				t.Fatalf("bad header %+v", h)
			}
			p := f.B[len(f.B)-r.Len():]
			if int64(len(p)) != h.Length {
				t.Fatalf("payload %d bytes, header says %d", len(p), h.Length)
			}
			if tc.code == 0 {
				if len(p) != 0 {
					t.Fatalf("payload % x, want empty", p)
				}
				return
			}
			if got := ws.StatusCode(binary.BigEndian.Uint16(p)); got != tc.code || string(p[2:]) != tc.wantReason {
				t.Fatalf("close %d %q, want %d %q", got, p[2:], tc.code, tc.wantReason)
			}
		})
	}
}
