package server

import (
	"net/netip"
	"strings"

	"github.com/wspush/wspush/internal/prefixes"
)

// clientIP is the address per-IP limits count for a connection from peer.
// When peer is one of the trusted proxies, X-Forwarded-For (xff) is read
// from the right, as each proxy appends the address it received from: the
// first address that is not a trusted proxy is the client. An entry that
// does not parse ends the walk at the last trusted hop, so a forged or
// garbled header can never name an address the trusted chain did not
// write. With no trusted proxies, or a peer outside them, xff is ignored.
func clientIP(peer netip.Addr, xff string, trusted []netip.Prefix) netip.Addr {
	addr := peer.Unmap()
	if xff == "" || !prefixes.Contains(trusted, addr) {
		return addr
	}
	for xff != "" {
		part := xff
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			part, xff = xff[i+1:], xff[:i]
		} else {
			xff = ""
		}
		hop, ok := parseHop(strings.TrimSpace(part))
		if !ok {
			return addr
		}
		addr = hop
		if !prefixes.Contains(trusted, addr) {
			return addr
		}
	}
	return addr
}

// parseHop parses one X-Forwarded-For entry: an address, optionally with a
// port ("203.0.113.7:4711", "[2001:db8::1]:443"), as some proxies write.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}
