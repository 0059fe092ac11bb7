package redis

import (
	"strconv"
	"testing"
)

func TestParsePayload(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		seq  uint64
		ms   int64
		data string
	}{
		{"E:1:1700000000000:{}", true, 1, 1700000000000, "{}"},
		{`Ab_-9:42:5:{"a":"x:y"}`, true, 42, 5, `{"a":"x:y"}`},
		{"E:1:2:", true, 1, 2, ""},
		{"E:1:{}", false, 0, 0, ""},    // no time
		{"E::1:{}", false, 0, 0, ""},   // no seq
		{"E:-1:1:{}", false, 0, 0, ""}, // negative seq
		{"E:1:x:{}", false, 0, 0, ""},  // bad time
		{"E!:1:1:{}", false, 0, 0, ""}, // bad epoch
		{":1:1:{}", false, 0, 0, ""},   // empty epoch
		{"", false, 0, 0, ""},
	}
	for _, tt := range tests {
		pos, ms, data, ok := parsePayload(tt.in)
		if ok != tt.ok || (ok && (pos.Seq != tt.seq || ms != tt.ms || data != tt.data)) {
			t.Errorf("parsePayload(%q) = %+v %d %q %v, want seq %d ms %d %q %v", tt.in, pos, ms, data, ok, tt.seq, tt.ms, tt.data, tt.ok)
		}
	}
}

// FuzzParsePayload: never panics, and what it accepts encodes back to the
// same payload.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{"E:1:1700000000000:{}", `q3F8aZ0-x_c:17:5:{"a":"b:c"}`, "E:1:{}", ":::", "E:18446744073709551615:9223372036854775807:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos, ms, data, ok := parsePayload(s)
		if !ok {
			return
		}
		back := pos.Epoch + ":" + strconv.FormatUint(pos.Seq, 10) + ":" + strconv.FormatInt(ms, 10) + ":" + data
		if p2, ms2, d2, ok2 := parsePayload(back); !ok2 || p2 != pos || ms2 != ms || d2 != data {
			t.Fatalf("%q parsed to %+v %d %q, which encodes to %q and parses differently", s, pos, ms, data, back)
		}
	})
}
