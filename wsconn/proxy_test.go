package wsconn

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyV2 is a PROXY protocol v2 header from the library's own encoder.
func proxyV2(t testing.TB, cmd proxyproto.ProtocolVersionAndCommand, src string) []byte {
	t.Helper()
	ap := netip.MustParseAddrPort(src)
	fam := proxyproto.TCPv4
	dst := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	if ap.Addr().Is6() {
		fam, dst = proxyproto.TCPv6, &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}
	}
	h := &proxyproto.Header{Version: 2, Command: cmd, TransportProtocol: fam,
		SourceAddr: net.TCPAddrFromAddrPort(ap), DestinationAddr: dst}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyHeaderLen(t *testing.T) {
	v1 := []byte("PROXY TCP4 203.0.113.7 127.0.0.1 4711 8080\r\n")
	v2 := proxyV2(t, proxyproto.PROXY, "203.0.113.7:4711")
	tests := []struct {
		name string
		in   []byte
		want int
		err  error
	}{
		{name: "nothing yet", in: nil, want: 0},
		{name: "v1 partial", in: v1[:10], want: 0},
		{name: "v1 complete", in: v1, want: len(v1)},
		{name: "v1 then request", in: append(bytes.Clone(v1), "GET / HTTP/1.1\r\n"...), want: len(v1)},
		{name: "v1 too long", in: append([]byte("PROXY "), bytes.Repeat([]byte("1"), 200)...), err: errProxyTooLong},
		{name: "v2 signature partial", in: v2[:7], want: 0},
		{name: "v2 length known", in: v2[:16], want: len(v2)},
		{name: "v2 complete", in: v2, want: len(v2)},
		{name: "a plain request", in: []byte("GET /ws HTTP/1.1\r\n"), err: errProxyMissing},
		{name: "one wrong byte", in: []byte("PROXX"), err: errProxyMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := proxyHeaderLen(tt.in)
			if n != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("proxyHeaderLen = %d, %v; want %d, %v", n, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseProxyHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    string // "" for no address
		wantErr bool
	}{
		{name: "v1 TCP4", in: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 4711 8080\r\n"), want: "203.0.113.7:4711"},
		{name: "v1 TCP6", in: []byte("PROXY TCP6 2001:db8::1 ::1 4711 8080\r\n"), want: "[2001:db8::1]:4711"},
		{name: "v1 UNKNOWN", in: []byte("PROXY UNKNOWN\r\n")},
		{name: "v2 TCP4", in: proxyV2(t, proxyproto.PROXY, "203.0.113.7:4711"), want: "203.0.113.7:4711"},
		{name: "v2 TCP6", in: proxyV2(t, proxyproto.PROXY, "[2001:db8::1]:443"), want: "[2001:db8::1]:443"},
		{name: "v2 LOCAL", in: proxyV2(t, proxyproto.LOCAL, "203.0.113.7:4711")},
		{name: "v1 bad address", in: []byte("PROXY TCP4 203.0.113.999 127.0.0.1 4711 8080\r\n"), wantErr: true},
		{name: "v1 bad port", in: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 99999 8080\r\n"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProxyHeader(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if s := addrString(got); s != tt.want {
				t.Fatalf("address %q, want %q", s, tt.want)
			}
		})
	}
}

func addrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

// FuzzProxyHeader: any bytes are measured and, once complete, parsed
// without a panic, and a parsed address is a real one.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 4711 8080\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(f, proxyproto.PROXY, "[2001:db8::1]:443"))
	f.Add(proxyV2(f, proxyproto.LOCAL, "203.0.113.7:4711"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := proxyHeaderLen(b)
		if err != nil || n == 0 || n > len(b) {
			return
		}
		ap, err := parseProxyHeader(b[:n])
		if err == nil && ap.IsValid() && ap.Addr().Is4In6() {
			t.Fatalf("%s: IPv4-mapped address not unmapped", ap)
		}
	})
}

// TestProxyProtocol runs real connections through a server that expects
// PROXY headers from 127.0.0.0/8, each header sent a byte at a time so that
// it spans many reads.
func TestProxyProtocol(t *testing.T) {
	h := newTestHandler()
	ts := startServer(t, Config{ProxyProtocol: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, h)
	tests := []struct {
		name   string
		header []byte
		remote string // the RemoteAddr Accept sees; "" for the peer's
		status int
	}{
		{name: "v1", header: []byte("PROXY TCP4 203.0.113.7 127.0.0.1 4711 8080\r\n"), remote: "203.0.113.7:4711", status: 101},
		{name: "v2", header: proxyV2(t, proxyproto.PROXY, "[2001:db8::1]:443"), remote: "[2001:db8::1]:443", status: 101},
		{name: "v2 LOCAL keeps the peer", header: proxyV2(t, proxyproto.LOCAL, "203.0.113.9:1"), status: 101},
		{name: "missing header", header: nil, status: http.StatusBadRequest},
		{name: "garbled header", header: []byte("PROXY TCP4 nonsense\r\n"), status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := ts.rawConn(t)
			msg := append(bytes.Clone(tt.header), upgradeRequest("/ws")...)
			for i := range msg[:len(tt.header)] {
				if _, err := nc.Write(msg[i : i+1]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Microsecond)
			}
			if _, err := nc.Write(msg[len(tt.header):]); err != nil {
				t.Fatal(err)
			}
			resp, _, body := readResponse(t, nc)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status != 101 {
				return
			}
			want := tt.remote
			if want == "" {
				want = nc.LocalAddr().String()
			}
			select {
			case rec := <-h.accepted:
				if got := rec.conn.RemoteAddr().String(); got != want {
					t.Fatalf("RemoteAddr %s, want %s", got, want)
				}
			case <-time.After(waitShort):
				t.Fatal("no Accept")
			}
		})
	}
}

// TestProxyProtocolOnlyFromListedPeers: a server that lists no PROXY peers
// treats a PROXY line as the bad request it then is.
func TestProxyProtocolOnlyFromListedPeers(t *testing.T) {
	ts := startServer(t, Config{ProxyProtocol: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil)
	nc := ts.rawConn(t)
	msg := append([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 4711 8080\r\n"), upgradeRequest("/ws")...)
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	if resp, _, body := readResponse(t, nc); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d (%s), want 400", resp.StatusCode, body)
	}
}
