package wsconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/pires/go-proxyproto"
)

// The PROXY protocol (HAProxy's send-proxy, AWS NLB, Envoy, nginx
// proxy_protocol): a proxy in front that terminates TLS or balances TCP
// starts each connection with a header naming the client. Its framing is
// found here, so that the header is read as it arrives like the upgrade
// request; its parsing is github.com/pires/go-proxyproto's.

var (
	proxySigV1 = []byte("PROXY ")
	proxySigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	proxyV1MaxLen = 107 // the longest v1 line, CRLF included (spec §2.1)
	proxyV2Fixed  = 16  // v2 signature, version/command, family, length
)

var (
	// errProxyMissing: the bytes cannot start a PROXY header.
	errProxyMissing = errors.New("no PROXY protocol header")
	// errProxyTooLong: a v1 line longer than the spec allows.
	errProxyTooLong = errors.New("PROXY protocol v1 header too long")
)

// proxyHeaderLen reports how long the PROXY header at the start of b is,
// as soon as that is known (a v2 header says so in its first 16 bytes, so n
// may exceed len(b): the rest has not arrived), or 0 while it is not known
// yet. It returns errProxyMissing when b cannot start a header and
// errProxyTooLong for an overlong v1 line.
func proxyHeaderLen(b []byte) (int, error) {
	switch {
	case startsLike(b, proxySigV2):
		if len(b) < proxyV2Fixed {
			return 0, nil
		}
		return proxyV2Fixed + int(binary.BigEndian.Uint16(b[14:16])), nil
	case startsLike(b, proxySigV1):
		i := bytes.Index(b[:min(len(b), proxyV1MaxLen)], []byte("\r\n"))
		if i < 0 {
			if len(b) >= proxyV1MaxLen {
				return 0, errProxyTooLong
			}
			return 0, nil
		}
		return i + 2, nil
	}
	return 0, errProxyMissing
}

// startsLike reports whether b and sig agree on their common length: b
// starts with sig, or is a prefix of it.
func startsLike(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// parseProxyHeader parses a complete header (as measured by proxyHeaderLen)
// and returns the client's address, or the zero AddrPort when the header
// names none (v2 LOCAL, v1 UNKNOWN, or a family other than TCP over IPv4 or
// IPv6): the connection then keeps its peer address.
func parseProxyHeader(h []byte) (netip.AddrPort, error) {
	hdr, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(h), len(h)))
	if err != nil {
		return netip.AddrPort{}, err
	}
	if hdr.Command.IsLocal() {
		return netip.AddrPort{}, nil
	}
	src, _, ok := hdr.TCPAddrs()
	if !ok {
		return netip.AddrPort{}, nil
	}
	ap := src.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
