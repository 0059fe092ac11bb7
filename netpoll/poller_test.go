package netpoll_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/netpoll"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

const (
	waitTotal    = 10 * time.Second
	waitInterval = time.Millisecond
)

// event is one HandleEvent call.
type event struct {
	fd int
	ev netpoll.Event
}

// recHandler sends every event it gets on a buffered channel; shared by all
// descriptors of a test so that the channel keeps the poller's order.
type recHandler struct {
	ch chan event
}

func newRecHandler() *recHandler { return &recHandler{ch: make(chan event, 1024)} }

func (h *recHandler) HandleEvent(fd int, ev netpoll.Event) {
	select {
	case h.ch <- event{fd, ev}:
	default:
		panic("recHandler: event channel full")
	}
}

// next waits for the next event.
func (h *recHandler) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-h.ch:
		return e
	case <-time.After(waitTotal):
		t.Fatalf("no event within %v", waitTotal)
		return event{}
	}
}

// nextFor waits for the next event and checks it is for fd.
func (h *recHandler) nextFor(t *testing.T, fd int) netpoll.Event {
	t.Helper()
	e := h.next(t)
	if e.fd != fd {
		t.Fatalf("event for fd %d, want fd %d", e.fd, fd)
	}
	return e.ev
}

// pending returns the events already delivered, without waiting.
func (h *recHandler) pending() []event {
	var out []event
	for {
		select {
		case e := <-h.ch:
			out = append(out, e)
		default:
			return out
		}
	}
}

// pair is one loopback TCP connection: client is the dialing side, server
// the accepted side whose descriptor the tests watch.
type pair struct {
	client net.Conn
	server *net.TCPConn
	fd     int
}

// newPair connects a client to a fresh listener on 127.0.0.1:0. Both ends
// are closed at the end of the test.
func newPair(t *testing.T) *pair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	server := sc.(*net.TCPConn)
	fd, err := netpoll.FD(server)
	if err != nil {
		client.Close()
		server.Close()
		t.Fatalf("FD: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return &pair{client: client, server: server, fd: fd}
}

// newPairOn returns a pair whose watched descriptor is r modulo n, so that
// it lands on poller r of a Group of n. Each fresh pair takes several
// descriptors, so the accepted side alone can keep one parity for a whole
// test; newPairOn also tries the dialing side (roles swapped) and keeps
// the pairs it does not use open until the end of the test, which moves
// the next descriptors on.
func newPairOn(t *testing.T, n, r int) *pair {
	t.Helper()
	for range 16 * n {
		c := newPair(t)
		if c.fd%n == r {
			return c
		}
		dialed := c.client.(*net.TCPConn)
		fd, err := netpoll.FD(dialed)
		if err != nil {
			t.Fatalf("FD: %v", err)
		}
		if fd%n == r {
			return &pair{client: c.server, server: dialed, fd: fd}
		}
	}
	t.Fatalf("no descriptor equal to %d modulo %d in %d pairs", r, n, 16*n)
	return nil
}

// write sends b from the client and waits until all of it is readable on
// the server socket (peeked, not consumed), so that the kernel has already
// marked the descriptor ready when write returns.
func (p *pair) write(t *testing.T, b string) {
	t.Helper()
	before := p.buffered(t)
	if _, err := p.client.Write([]byte(b)); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if n := p.buffered(t); n < before+len(b) {
			return fmt.Errorf("%d bytes buffered, want %d", n, before+len(b))
		}
		return nil
	})
}

// buffered reports how many bytes wait unread on the server socket.
func (p *pair) buffered(t *testing.T) int {
	t.Helper()
	n, err := unix.IoctlGetInt(p.fd, unix.SIOCINQ)
	if err != nil {
		t.Fatalf("SIOCINQ: %v", err)
	}
	return n
}

// read consumes n bytes from the server side.
func (p *pair) read(t *testing.T, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(p.server, buf); err != nil {
		t.Fatal(err)
	}
	return string(buf)
}

// startPoller runs a new Poller; it is closed at the end of the test, and
// Run must then have returned nil.
func startPoller(t *testing.T) *netpoll.Poller {
	t.Helper()
	p, err := netpoll.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run() }()
	// Close only once Run is surely running (see TestRunAfterClose).
	waitRunning(t, p, newRecHandler())
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after Close, want nil", err)
		}
	})
	return p
}

// waitRunning proves p's Run loop is live: a probe descriptor made readable
// reports an event through h.
func waitRunning(t *testing.T, p *netpoll.Poller, h *recHandler) {
	t.Helper()
	probe := newPair(t)
	if err := p.Add(probe.fd, h); err != nil {
		t.Fatal(err)
	}
	probe.write(t, "x")
	if ev := h.nextFor(t, probe.fd); ev&netpoll.EventRead == 0 {
		t.Fatalf("probe event %v without EventRead", ev)
	}
	if err := p.Remove(probe.fd); err != nil {
		t.Fatal(err)
	}
}

// waitGroupRunning proves every poller of g runs its loop: it puts one probe
// connection on each poller and waits for its event.
func waitGroupRunning(t *testing.T, g *netpoll.Group) {
	t.Helper()
	h := newRecHandler()
	for r := range g.Size() {
		probe := newPairOn(t, g.Size(), r)
		p, err := g.Add(probe.fd, h)
		if err != nil {
			t.Fatal(err)
		}
		probe.write(t, "x")
		h.nextFor(t, probe.fd)
		if err := p.Remove(probe.fd); err != nil {
			t.Fatal(err)
		}
	}
}

// barrier proves that every event the poller could have produced so far has
// reached h: it makes a fresh probe descriptor readable on p and drains h up
// to the probe's event, returning the events that came before it. The kernel
// queues a ready descriptor when it becomes ready, so any descriptor that
// was armed and ready before the probe is reported no later than the probe.
func barrier(t *testing.T, p *netpoll.Poller, h *recHandler) []event {
	t.Helper()
	probe := newPair(t)
	if err := p.Add(probe.fd, h); err != nil {
		t.Fatal(err)
	}
	probe.write(t, "!")
	var before []event
	for {
		e := h.next(t)
		if e.fd == probe.fd {
			break
		}
		before = append(before, e)
	}
	if err := p.Remove(probe.fd); err != nil {
		t.Fatal(err)
	}
	return append(before, h.pending()...)
}

func TestFD(t *testing.T) {
	p := newPair(t)
	if p.fd < 0 {
		t.Fatalf("FD = %d", p.fd)
	}
	// The descriptor is the connection's own, still non-blocking.
	fl, err := unix.FcntlInt(uintptr(p.fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		t.Error("FD switched the socket to blocking mode")
	}
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("fd %d is not a socket: %v", p.fd, err)
	}
	p.server.Close()
	if _, err := netpoll.FD(p.server); err == nil {
		t.Error("FD of a closed connection succeeded")
	}
}

func TestReadEvent(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{name: "one_byte", data: "x"},
		{name: "line", data: "hello, poller\n"},
		{name: "64k", data: string(make([]byte, 64<<10))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPoller(t)
			h := newRecHandler()
			c := newPair(t)
			if err := p.Add(c.fd, h); err != nil {
				t.Fatalf("Add: %v", err)
			}
			if p.Len() != 1 {
				t.Fatalf("Len() = %d, want 1", p.Len())
			}
			if _, err := c.client.Write([]byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			ev := h.nextFor(t, c.fd)
			if ev&netpoll.EventRead == 0 {
				t.Fatalf("event %v without EventRead", ev)
			}
			if ev&(netpoll.EventHangup|netpoll.EventError) != 0 {
				t.Fatalf("event %v reports hang-up or error on a live connection", ev)
			}
			if got := c.read(t, len(tt.data)); got != tt.data {
				t.Fatal("read back different data")
			}
		})
	}
}

func TestOneShot(t *testing.T) {
	p := startPoller(t)
	h := newRecHandler()
	c := newPair(t)
	if err := p.Add(c.fd, h); err != nil {
		t.Fatal(err)
	}
	c.write(t, "first")
	h.nextFor(t, c.fd)

	// More data while disarmed, with the first batch still unread: no
	// event until Rearm.
	c.write(t, "second")
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("events while disarmed: %v", extra)
	}
	// Reading everything does not re-arm either.
	if got := c.read(t, len("firstsecond")); got != "firstsecond" {
		t.Fatalf("read %q", got)
	}
	c.write(t, "third")
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("events after read without Rearm: %v", extra)
	}

	// Rearm with data still unread reports it at once, exactly once.
	if err := p.Rearm(c.fd); err != nil {
		t.Fatalf("Rearm: %v", err)
	}
	if ev := h.nextFor(t, c.fd); ev&netpoll.EventRead == 0 {
		t.Fatalf("event %v after Rearm without EventRead", ev)
	}
	c.write(t, "fourth")
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("second event without a second Rearm: %v", extra)
	}

	// Drain, Rearm with nothing to read: quiet until new data arrives.
	c.read(t, len("thirdfourth"))
	if err := p.Rearm(c.fd); err != nil {
		t.Fatal(err)
	}
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("event with nothing to read: %v", extra)
	}
	c.write(t, "fifth")
	if ev := h.nextFor(t, c.fd); ev&netpoll.EventRead == 0 {
		t.Fatalf("event %v without EventRead", ev)
	}
}

// TestEdge: an AddEdge descriptor reports each arrival of data once, with
// no Rearm, whether or not what came before was read; nothing comes while
// no new data arrives.
func TestEdge(t *testing.T) {
	p := startPoller(t)
	h := newRecHandler()
	c := newPair(t)
	if err := p.AddEdge(c.fd, h); err != nil {
		t.Fatal(err)
	}
	c.write(t, "first")
	if ev := h.nextFor(t, c.fd); ev&netpoll.EventRead == 0 {
		t.Fatalf("event %v without EventRead", ev)
	}
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("events with no new data: %v", extra)
	}
	// New data while the first is unread: a new edge, without Rearm.
	c.write(t, "second")
	h.nextFor(t, c.fd)
	if got := c.read(t, len("firstsecond")); got != "firstsecond" {
		t.Fatalf("read %q", got)
	}
	c.write(t, "third")
	h.nextFor(t, c.fd)
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("a second event for one arrival: %v", extra)
	}
	// The peer's close is an edge too, reported with EventRead.
	c.client.Close()
	if ev := h.nextFor(t, c.fd); ev&netpoll.EventRead == 0 || ev&netpoll.EventHangup == 0 {
		t.Fatalf("event %v after the peer closed, want read and hang-up", ev)
	}
}

func TestHangup(t *testing.T) {
	tests := []struct {
		name        string
		unreadFirst string // data the client sends before closing
		rearmBefore bool   // consume an event for the data first, then Rearm
	}{
		{name: "close_idle", unreadFirst: ""},
		{name: "close_with_unread_data", unreadFirst: "bye"},
		{name: "close_after_rearm", unreadFirst: "data", rearmBefore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPoller(t)
			h := newRecHandler()
			c := newPair(t)
			if err := p.Add(c.fd, h); err != nil {
				t.Fatal(err)
			}
			if tt.unreadFirst != "" {
				c.write(t, tt.unreadFirst)
			}
			if tt.rearmBefore {
				h.nextFor(t, c.fd)
				c.read(t, len(tt.unreadFirst))
				if err := p.Rearm(c.fd); err != nil {
					t.Fatal(err)
				}
				if extra := barrier(t, p, h); len(extra) != 0 {
					t.Fatalf("event with nothing to read: %v", extra)
				}
			}
			if err := c.client.Close(); err != nil {
				t.Fatal(err)
			}
			// The event may have been taken for the data before the FIN
			// arrived; re-arm until the hang-up shows.
			testutil.CheckFor(t, waitTotal, waitInterval, func() error {
				select {
				case e := <-h.ch:
					if e.fd != c.fd {
						return fmt.Errorf("event for fd %d", e.fd)
					}
					if e.ev&netpoll.EventRead == 0 {
						return fmt.Errorf("event %v without EventRead", e.ev)
					}
					if e.ev&netpoll.EventHangup != 0 {
						return nil
					}
					if err := p.Rearm(c.fd); err != nil {
						return err
					}
					return fmt.Errorf("event %v without EventHangup yet", e.ev)
				default:
					return errors.New("no event yet")
				}
			})
			// The hang-up is readable as EOF after any unread data.
			buf, err := io.ReadAll(c.server)
			if err != nil {
				t.Fatalf("read after hang-up: %v", err)
			}
			if !tt.rearmBefore && string(buf) != tt.unreadFirst {
				t.Errorf("read %q before EOF, want %q", buf, tt.unreadFirst)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	p := startPoller(t)
	h := newRecHandler()
	a, b := newPair(t), newPair(t)
	for _, c := range []*pair{a, b} {
		if err := p.Add(c.fd, h); err != nil {
			t.Fatal(err)
		}
	}
	if p.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", p.Len())
	}
	if err := p.Remove(a.fd); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if p.Len() != 1 {
		t.Fatalf("Len() after Remove = %d, want 1", p.Len())
	}
	a.write(t, "ignored")
	if err := a.client.Close(); err != nil {
		t.Fatal(err)
	}
	if extra := barrier(t, p, h); len(extra) != 0 {
		t.Fatalf("events after Remove: %v", extra)
	}
	// b is unaffected.
	b.write(t, "y")
	h.nextFor(t, b.fd)

	tests := []struct {
		name string
		op   func() error
	}{
		{name: "remove_again", op: func() error { return p.Remove(a.fd) }},
		{name: "rearm_removed", op: func() error { return p.Rearm(a.fd) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, netpoll.ErrNotRegistered) {
				t.Fatalf("got %v, want ErrNotRegistered", err)
			}
		})
	}
	// A removed descriptor can be added again.
	if err := p.Add(a.fd, h); err != nil {
		t.Fatalf("re-Add after Remove: %v", err)
	}
	if ev := h.nextFor(t, a.fd); ev&netpoll.EventHangup == 0 {
		t.Fatalf("re-added closed peer: event %v without EventHangup", ev)
	}
}

func TestRegistrationErrors(t *testing.T) {
	p := startPoller(t)
	h := newRecHandler()
	registered := newPair(t)
	unknown := newPair(t)
	if err := p.Add(registered.fd, h); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{name: "add_twice", op: func() error { return p.Add(registered.fd, h) }, want: netpoll.ErrRegistered},
		{name: "add_twice_other_handler", op: func() error { return p.Add(registered.fd, newRecHandler()) }, want: netpoll.ErrRegistered},
		{name: "rearm_unknown", op: func() error { return p.Rearm(unknown.fd) }, want: netpoll.ErrNotRegistered},
		{name: "remove_unknown", op: func() error { return p.Remove(unknown.fd) }, want: netpoll.ErrNotRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if p.Len() != 1 {
				t.Fatalf("Len() = %d, want 1", p.Len())
			}
		})
	}
	// The failed second Add did not disturb the first registration.
	registered.write(t, "z")
	h.nextFor(t, registered.fd)

	t.Run("add_not_a_socket_fd", func(t *testing.T) {
		// A descriptor epoll refuses (a regular file) is not left
		// registered.
		f, err := os.CreateTemp(t.TempDir(), "f")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		if err := p.Add(fd, h); err == nil {
			t.Fatal("Add of a regular file succeeded")
		}
		if p.Len() != 1 {
			t.Fatalf("Len() = %d after a failed Add, want 1", p.Len())
		}
		if err := p.Remove(fd); !errors.Is(err, netpoll.ErrNotRegistered) {
			t.Fatalf("Remove after failed Add = %v, want ErrNotRegistered", err)
		}
	})
}

func TestCloseAndClosedErrors(t *testing.T) {
	p, err := netpoll.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run() }()
	h := newRecHandler()
	waitRunning(t, p, h)
	c := newPair(t)
	if err := p.Add(c.fd, h); err != nil {
		t.Fatal(err)
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after Close, want nil", err)
		}
	case <-time.After(waitTotal):
		t.Fatal("Run did not return after Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if p.Len() != 0 {
		t.Errorf("Len() after Close = %d, want 0", p.Len())
	}

	other := newPair(t)
	tests := []struct {
		name string
		op   func() error
	}{
		{name: "add", op: func() error { return p.Add(other.fd, h) }},
		{name: "add_registered_before_close", op: func() error { return p.Add(c.fd, h) }},
		{name: "rearm", op: func() error { return p.Rearm(c.fd) }},
		{name: "rearm_unknown", op: func() error { return p.Rearm(other.fd) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, netpoll.ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", err)
			}
		})
	}
	// Closing the poller does not close watched sockets.
	c.write(t, "still open")
	if got := c.read(t, len("still open")); got != "still open" {
		t.Fatalf("socket after poller Close: read %q", got)
	}
}

// TestRemoveAfterClose checks Remove against ErrClosed's doc ("returned by
// operations on a Poller or Group after Close"). Close clears the handler
// table, so Remove reports ErrNotRegistered instead, and its own
// "closed → return nil" branch is unreachable once Close has returned.
func TestRemoveAfterClose(t *testing.T) {
	p, err := netpoll.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	c := newPair(t)
	if err := p.Add(c.fd, newRecHandler()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(c.fd); err != nil && !errors.Is(err, netpoll.ErrClosed) {
		t.Fatalf("Remove of a registered fd after Close = %v, want nil or ErrClosed", err)
	}
}

// TestRearmClosedFD checks Rearm against ErrNotRegistered's doc ("returned
// by Rearm and Remove for an unknown fd"). Rearm does not consult the handler
// table; for a descriptor number that is no longer open epoll_ctl fails with
// EBADF and Rearm returns a raw syscall error, while Remove returns
// ErrNotRegistered.
func TestRearmClosedFD(t *testing.T) {
	p := startPoller(t)
	c := newPair(t)
	if err := p.Add(c.fd, newRecHandler()); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(c.fd); err != nil {
		t.Fatal(err)
	}
	c.server.Close()
	if err := p.Remove(c.fd); !errors.Is(err, netpoll.ErrNotRegistered) {
		t.Errorf("Remove of a closed fd = %v, want ErrNotRegistered", err)
	}
	if err := p.Rearm(c.fd); !errors.Is(err, netpoll.ErrNotRegistered) {
		t.Errorf("Rearm of a closed fd = %v, want ErrNotRegistered", err)
	}
}

func TestCloseWithoutRun(t *testing.T) {
	p, err := netpoll.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close of a poller never run: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestRunAfterClose: Close before Run has started (as Group.Close right
// after NewGroup can do) must still make Run return nil. Run finds the
// epoll descriptor already closed and returns an epoll_wait error instead
// (or, if the number was reused for another epoll instance, blocks on it).
func TestRunAfterClose(t *testing.T) {
	p, err := netpoll.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close = %v, want nil", err)
		}
	case <-time.After(waitTotal):
		t.Fatal("Run after Close blocked")
	}
}

// TestGroupCloseRightAfterNew repeats NewGroup + Close with nothing in
// between, the pattern of wsconn's startup error path. Set
func TestGroupCloseRightAfterNew(t *testing.T) {
	for i := 0; i < 200; i++ {
		g, err := netpoll.NewGroup(4)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatalf("iteration %d: Close right after NewGroup: %v", i, err)
		}
	}
}
