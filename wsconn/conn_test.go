package wsconn

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

// TestConnSize: a Conn is held per connection for its whole life, so its
// size class is memory per connection (BENCHMARKS.md's table). A field
// added in the wrong place moves it to the next class (192 bytes).
func TestConnSize(t *testing.T) {
	if got := unsafe.Sizeof(Conn{}); got > 176 {
		t.Fatalf("Conn is %d bytes, want at most 176 (the size class it fits)", got)
	}
}

func TestPeerAddrRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:80", "10.1.2.3:65535", "[::1]:443", "[2001:db8::7]:1", "0.0.0.0:1"} {
		a := netip.MustParseAddrPort(s)
		if got := packAddr(a).addrPort(); got != a {
			t.Errorf("%s comes back as %s", a, got)
		}
	}
	// A mapped IPv4 address comes back as IPv4 (as sockaddrPort gives it).
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:9")
	if got := packAddr(mapped).addrPort(); got != netip.MustParseAddrPort("192.0.2.1:9") {
		t.Errorf("%s comes back as %s", mapped, got)
	}
	if got := packAddr(netip.AddrPort{}).addrPort(); got.IsValid() {
		t.Errorf("no address comes back as %s", got)
	}
}

// TestPingDue: rounds are PingInterval apart; a connection that answered
// the last round's ping (silent a little less than an interval) is pinged
// again, one that read within the last interval less a sweep is not.
func TestPingDue(t *testing.T) {
	cfg := Config{PingInterval: 25 * time.Second, SweepInterval: time.Second}
	for _, tc := range []struct {
		silent time.Duration
		want   bool
	}{
		{25 * time.Second, true},
		{25*time.Second - 3*time.Millisecond, true}, // ponged right after the last round
		{24 * time.Second, true},
		{24*time.Second - time.Millisecond, false},
		{10 * time.Second, false},
		{0, false},
	} {
		if got := cfg.pingDue(tc.silent); got != tc.want {
			t.Errorf("silent %v: due %v, want %v", tc.silent, got, tc.want)
		}
	}
}
