package wsconn

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/netpoll"
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
	// A mapped IPv4 address comes back as IPv4 (as accept4 gives it).
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:9")
	if got := packAddr(mapped).addrPort(); got != netip.MustParseAddrPort("192.0.2.1:9") {
		t.Errorf("%s comes back as %s", mapped, got)
	}
	if got := packAddr(netip.AddrPort{}).addrPort(); got.IsValid() {
		t.Errorf("no address comes back as %s", got)
	}
}

// TestPingDue: rounds are PingInterval apart; a connection that answered
// the last round's ping (silent a little less than an interval, or that
// less a sweep when the ping went out a sweep late) is pinged again, one
// that read within the last interval less two sweeps is not.
func TestPingDue(t *testing.T) {
	cfg := Config{PingInterval: 25 * time.Second, SweepInterval: time.Second}
	for _, tc := range []struct {
		silent time.Duration
		want   bool
	}{
		{25 * time.Second, true},
		{25*time.Second - 3*time.Millisecond, true}, // ponged right after the last round
		{24*time.Second - 3*time.Millisecond, true}, // ponged the ping written a sweep after its round
		{15 * time.Second, true},                    // ponged 10 s late on a loaded host
		{12500 * time.Millisecond, true},
		{12500*time.Millisecond - time.Millisecond, false}, // sent something within half an interval
		{time.Second, false},
		{0, false},
	} {
		if got := cfg.pingDue(tc.silent); got != tc.want {
			t.Errorf("silent %v: due %v, want %v", tc.silent, got, tc.want)
		}
	}
}

// TestAcceptAddresses: accept4 decodes the peer's address itself (network
// byte order port, IPv4-mapped IPv6 unmapped): over real sockets the
// server sees exactly the client's local address, for IPv4 and IPv6.
func TestAcceptAddresses(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "tcp6" {
				host = "[::1]:0"
			}
			ln, err := net.Listen(network, host)
			if err != nil {
				t.Fatalf("no %s loopback here: %v", network, err)
			}
			defer ln.Close()
			lfd, err := netpoll.FD(ln.(syscall.Conn))
			if err != nil {
				t.Fatal(err)
			}
			nc, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			var fd int
			var peer netip.AddrPort
			deadline := time.Now().Add(waitShort)
			for fd, peer, err = accept4(lfd); errors.Is(err, unix.EAGAIN) && time.Now().Before(deadline); fd, peer, err = accept4(lfd) {
				time.Sleep(time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
			if want := nc.LocalAddr().(*net.TCPAddr).AddrPort(); peer != want {
				t.Fatalf("accept4 gives %s, want the client's %s", peer, want)
			}
		})
	}
}

// TestSocketOptions: an accepted socket has TCP_NODELAY, and no
// TCP_USER_TIMEOUT until a keepalive round finds it was written deliveries
// (TestDeliveriesStandInForPings).
func TestSocketOptions(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	_, rec := ts.dialRec(t)
	for _, o := range []struct {
		name      string
		opt, want int
	}{
		{"TCP_NODELAY", unix.TCP_NODELAY, 1},
		{"TCP_USER_TIMEOUT", unix.TCP_USER_TIMEOUT, 0},
	} {
		if got := sockoptInt(t, rec.conn, o.opt); got != o.want {
			t.Errorf("%s = %d, want %d", o.name, got, o.want)
		}
	}
}

// sockoptInt reads an IPPROTO_TCP option of c's socket.
func sockoptInt(t testing.TB, c *Conn, opt int) int {
	t.Helper()
	if !c.fdAcquire() {
		t.Fatal("connection already closing")
	}
	defer c.fdRelease()
	v, err := unix.GetsockoptInt(int(c.fd), unix.IPPROTO_TCP, opt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
