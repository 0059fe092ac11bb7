package prefixes

import (
	"fmt"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{name: "empty", in: "", want: "[]"},
		{name: "address", in: "10.0.0.7", want: "[10.0.0.7/32]"},
		{name: "IPv6 address", in: "::1", want: "[::1/128]"},
		{name: "prefix masked", in: "192.168.1.9/16", want: "[192.168.0.0/16]"},
		{name: "list with spaces and empties", in: " 10.0.0.7, ,fd00::/8", want: "[10.0.0.7/32 fd00::/8]"},
		{name: "bad address", in: "10.0.0.300", err: true},
		{name: "zone", in: "fe80::1%eth0", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("Parse(%q) error %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && fmt.Sprint(got) != tt.want {
				t.Fatalf("Parse(%q) = %v, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestContains(t *testing.T) {
	list := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"fd00::1", true},
		{"11.0.0.1", false},
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := Contains(list, netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	if Contains(nil, netip.MustParseAddr("10.1.2.3")) {
		t.Fatal("an empty list contains nothing")
	}
}
