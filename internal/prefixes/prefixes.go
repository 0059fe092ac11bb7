// Package prefixes holds the address lists that name trusted peers: the
// proxies whose X-Forwarded-For or PROXY protocol header is believed. It
// parses them and tests membership; it never decides what trust means.
package prefixes

import (
	"fmt"
	"net/netip"
	"strings"
)

// Contains reports whether a is inside one of the prefixes. An IPv4 address
// written IPv4-mapped (::ffff:10.0.0.1) matches IPv4 prefixes.
func Contains(list []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Parse reads a comma-separated list of addresses ("10.0.0.7") and CIDR
// prefixes ("10.0.0.0/8", "fd00::/8"); an address is the prefix of that one
// address, and a prefix is masked to its network. Empty entries are
// skipped.
func Parse(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("bad address or CIDR %q (want e.g. 10.0.0.7 or 10.0.0.0/8)", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
