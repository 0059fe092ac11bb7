package wsconn

import (
	"net/netip"
	"testing"
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
