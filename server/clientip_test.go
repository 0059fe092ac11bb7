package server

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wspush/wspush/internal/prefixes"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	proxy := netip.MustParseAddr("10.1.2.3")
	tests := []struct {
		name    string
		peer    netip.Addr
		xff     string
		trusted []netip.Prefix
		want    string
	}{
		{name: "no trusted proxies: header ignored", peer: proxy, xff: "203.0.113.7", want: "10.1.2.3"},
		{name: "untrusted peer: header ignored", peer: netip.MustParseAddr("198.51.100.1"), xff: "203.0.113.7",
			trusted: trusted, want: "198.51.100.1"},
		{name: "trusted peer without header", peer: proxy, trusted: trusted, want: "10.1.2.3"},
		{name: "one proxy", peer: proxy, xff: "203.0.113.7", trusted: trusted, want: "203.0.113.7"},
		{name: "client-forged entries left of the real one", peer: proxy, xff: "1.1.1.1, 2.2.2.2, 203.0.113.7",
			trusted: trusted, want: "203.0.113.7"},
		{name: "two trusted proxies", peer: proxy, xff: "203.0.113.7, 10.9.9.9", trusted: trusted, want: "203.0.113.7"},
		{name: "every hop trusted", peer: proxy, xff: "10.5.5.5, 10.9.9.9", trusted: trusted, want: "10.5.5.5"},
		{name: "garbage stops at the last trusted hop", peer: proxy, xff: "203.0.113.7, unknown", trusted: trusted,
			want: "10.1.2.3"},
		{name: "garbage left of the client is never reached", peer: proxy, xff: "nonsense, 203.0.113.7",
			trusted: trusted, want: "203.0.113.7"},
		{name: "entry with a port", peer: proxy, xff: "203.0.113.7:4711", trusted: trusted, want: "203.0.113.7"},
		{name: "IPv6 entry with a port", peer: proxy, xff: "[2001:db8::1]:443", trusted: trusted, want: "2001:db8::1"},
		{name: "IPv4-mapped peer", peer: netip.MustParseAddr("::ffff:10.1.2.3"), xff: "203.0.113.7",
			trusted: trusted, want: "203.0.113.7"},
		{name: "IPv4-mapped entry", peer: proxy, xff: "::ffff:203.0.113.7", trusted: trusted, want: "203.0.113.7"},
		{name: "zone dropped", peer: proxy, xff: "fe80::1%eth0", trusted: trusted, want: "fe80::1"},
		{name: "empty entries", peer: proxy, xff: " , ", trusted: trusted, want: "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientIP(tt.peer, tt.xff, tt.trusted); got.String() != tt.want {
				t.Fatalf("clientIP(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

// FuzzClientIP: any header gives either the peer or an address written in
// it, never one from a part the trusted chain did not reach, and an
// untrusted peer is always itself.
func FuzzClientIP(f *testing.F) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, s := range []string{"", "203.0.113.7", "1.1.1.1, 203.0.113.7, 10.0.0.1", "[2001:db8::1]:443", "x,,y"} {
		f.Add("10.0.0.1", s)
		f.Add("198.51.100.1", s)
	}
	f.Fuzz(func(t *testing.T, peerText, xff string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			return
		}
		got := clientIP(peer, xff, trusted)
		if !got.IsValid() {
			t.Fatalf("clientIP(%s, %q) is not an address", peer, xff)
		}
		if !prefixes.Contains(trusted, peer) {
			if got != peer.Unmap() {
				t.Fatalf("untrusted peer %s became %s", peer, got)
			}
			return
		}
		if got == peer.Unmap() {
			return
		}
		// got must be one of the entries, and every entry right of it a
		// trusted proxy.
		parts := strings.Split(xff, ",")
		for i := len(parts) - 1; i >= 0; i-- {
			hop, ok := parseHop(strings.TrimSpace(parts[i]))
			if !ok {
				t.Fatalf("clientIP(%s, %q) = %s from beyond an unparsable entry", peer, xff, got)
			}
			if hop == got {
				return
			}
			if !prefixes.Contains(trusted, hop) {
				t.Fatalf("clientIP(%s, %q) = %s, but %s is the first untrusted hop", peer, xff, got, hop)
			}
		}
		t.Fatalf("clientIP(%s, %q) = %s, not in the header", peer, xff, got)
	})
}
