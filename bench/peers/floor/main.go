// Command floor is the yardstick benchmark peer: "what the machine can do"
// with no WebSocket library at all. It speaks the protocol subset over raw
// non-blocking sockets driven by epoll through golang.org/x/sys/unix.
//
// Shape:
//   - one epoll loop goroutine per core (-loops, default GOMAXPROCS), each
//     with its own SO_REUSEPORT listening socket, so the kernel spreads
//     connections and a loop owns every connection it accepted; there is no
//     goroutine per connection;
//   - the HTTP upgrade is parsed by hand in the loop; the 101 is written
//     after the connection is subscribed;
//   - client frames are parsed only for close (echoed, then the connection
//     is closed) and ping (answered with a pong); data frames are skipped
//     without buffering;
//   - the publish API is a plain net/http server. Its handler frames each
//     publish once, into a per-topic buffer, and hands the same bytes to
//     every subscriber.
//
// Delivery modes (-mode). coalesce, the default: the frame is appended to
// the connection's pending bytes and the connection is put on its loop's
// dirty list; the loop, woken through an eventfd, makes ONE write per
// dirty connection carrying everything pending, so publishes that arrive
// while the loop is busy share a write, as wspush's writers do. The loop
// swaps the pending bytes for an empty write buffer under the connection's
// mutex and writes with no lock held, so publishers never wait for a
// write syscall; a publish that leaves a connection more than -pace bytes
// behind (its socket not full) waits for the loops' flush round once the
// topic is released.
// write-per-delivery: the handler writes to every subscriber directly, one
// write syscall each.
//
// Concurrency: per-connection write state (pending bytes, EPOLLOUT arming,
// the dirty mark, the dead flag, and closing the fd) is guarded by a
// per-connection mutex that publishers and the owning loop both take; in
// coalesce mode it is held only to append or to swap buffers, never
// across a write; in write-per-delivery mode publishers write to sockets
// themselves, under it. Each loop's dirty list and round counters have
// their own small mutex. A topic's mutex is held across seq assignment and
// the whole fan-out, which gives per-topic seq order. Lock order: topic,
// then connection, then the loop's dirty list. When a write would block,
// the rest of it stays queued ahead of any later frames (coalesce: at the
// front of the loop's write buffer; write-per-delivery: in pending) and
// the loop writes it, and what was queued behind it, on EPOLLOUT. A
// connection whose unsent bytes would exceed -max-pending misses that
// whole frame (counted as a drop, printed to stderr on exit).
//
// The steady-state delivery path allocates nothing in either mode (pending
// and write buffers and dirty lists are reused).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

func main() { peerutil.Main("floor", run) }

// run binds both listeners, prints the LISTEN line to stdout and serves
// until ctx is done, then prints drop and backpressure totals to stderr.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	s, err := start(args)
	if err != nil {
		return err
	}
	if err := peerutil.Announce(stdout, s.wsAddr, s.api.Addr()); err != nil {
		_ = s.stop()
		return err
	}
	<-ctx.Done()
	err = s.stop()
	fmt.Fprintf(os.Stderr, "floor: dropped %d frames (pending buffer full); %d writes hit EAGAIN; %d publishes paced (mode %s)\n",
		s.drops.Load(), s.eagain.Load(), s.paced.Load(), s.mode)
	return err
}

// Delivery modes (-mode).
const (
	// modeCoalesce queues each delivery and lets the connection's loop
	// write everything pending with one write per connection.
	modeCoalesce = "coalesce"
	// modeWritePerDelivery writes each delivery from the publisher, one
	// write syscall per subscriber per publish.
	modeWritePerDelivery = "write-per-delivery"
)

type server struct {
	mode       string // modeCoalesce or modeWritePerDelivery
	maxPending int
	pace       int // coalesce mode: queued bytes past which a publisher waits for the loop's round (0: never)
	wsAddr     string
	api        *peerutil.Server
	loops      []*loop
	wg         sync.WaitGroup

	topicsMu sync.RWMutex
	topics   map[string]*topic

	drops  atomic.Uint64 // frames not queued because pending was full
	eagain atomic.Uint64 // direct writes that did not complete
	paced  atomic.Uint64 // coalesce mode: publishes that waited for the loops' rounds (-pace)
}

func start(args []string) (*server, error) {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	var addrs peerutil.Addrs
	addrs.Register(fs)
	nloops := fs.Int("loops", runtime.GOMAXPROCS(0), "epoll loop goroutines, each with its own SO_REUSEPORT listener")
	maxPending := fs.Int("max-pending", 8<<20, "bytes a connection may have queued before further frames to it are dropped")
	pace := fs.Int("pace", 16<<10, "coalesce mode: a publish that leaves more than this many bytes queued on a connection whose socket is not full waits for the loops' flush rounds (0: never wait)")
	mode := fs.String("mode", modeCoalesce, "delivery: coalesce (queue; the loop makes one write per connection for everything pending) or write-per-delivery (one write per subscriber per publish)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *nloops < 1 || *maxPending < 1 {
		return nil, errors.New("-loops and -max-pending must be positive")
	}
	if *pace < 0 {
		return nil, errors.New("-pace must not be negative")
	}
	if *mode != modeCoalesce && *mode != modeWritePerDelivery {
		return nil, fmt.Errorf("-mode %q: want %s or %s", *mode, modeCoalesce, modeWritePerDelivery)
	}
	s := &server{mode: *mode, maxPending: *maxPending, pace: *pace, topics: make(map[string]*topic)}
	lnfds, addr, err := listenReusePort(addrs.WS, *nloops)
	if err != nil {
		return nil, err
	}
	s.wsAddr = addr
	for i, fd := range lnfds {
		l, err := newLoop(s, fd)
		if err != nil {
			for _, l := range s.loops {
				l.release()
			}
			for _, fd := range lnfds[i:] {
				_ = unix.Close(fd)
			}
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	if s.api, err = peerutil.Listen(addrs.API, peerutil.APIHandler(s, 0)); err != nil {
		for _, l := range s.loops {
			l.release()
		}
		return nil, err
	}
	for _, l := range s.loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			l.run()
		}()
	}
	s.api.Start()
	return s, nil
}

// stop closes the API first (no more publishers), then wakes every loop,
// which closes its connections and listener.
func (s *server) stop() error {
	err := s.api.Close(5 * time.Second)
	for _, l := range s.loops {
		l.stop()
	}
	s.wg.Wait()
	return err
}

// listenReusePort opens n listening sockets on addr with SO_REUSEPORT.
// With port 0 the first bind picks the port and the rest join it.
func listenReusePort(addr string, n int) ([]int, string, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	family := unix.AF_INET
	if ta.IP != nil && ta.IP.To4() == nil {
		family = unix.AF_INET6
	}
	port := ta.Port
	var fds []int
	fail := func(err error) ([]int, string, error) {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, "", fmt.Errorf("listen %s: %w", addr, err)
	}
	var bound string
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		fds = append(fds, fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail(err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail(err)
		}
		var sa unix.Sockaddr
		if family == unix.AF_INET {
			sa4 := &unix.SockaddrInet4{Port: port}
			if ta.IP != nil {
				copy(sa4.Addr[:], ta.IP.To4())
			}
			sa = sa4
		} else {
			sa6 := &unix.SockaddrInet6{Port: port}
			copy(sa6.Addr[:], ta.IP.To16())
			sa = sa6
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fail(err)
		}
		if err := unix.Listen(fd, 4096); err != nil {
			return fail(err)
		}
		if i == 0 {
			got, err := unix.Getsockname(fd)
			if err != nil {
				return fail(err)
			}
			switch a := got.(type) {
			case *unix.SockaddrInet4:
				port = a.Port
				bound = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
			case *unix.SockaddrInet6:
				port = a.Port
				bound = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
			default:
				return fail(fmt.Errorf("unexpected socket address %T", got))
			}
		}
	}
	return fds, bound, nil
}
