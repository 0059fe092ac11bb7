package wsconn

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/rawsys"
)

// System calls on a connection's socket are raw (internal/rawsys): it is
// non-blocking, so none of them blocks.

// Descriptor lifetime. Conn works on the raw socket descriptor (no net.Conn:
// that would cost a netFD, two addresses and a runtime pollDesc per
// connection). A number that is closed can be reused by the kernel at once,
// so every read, write and shutdown holds a use reference, and the close
// happens when teardown has asked for it and the last user is gone.

// fdClosing is the bit of Conn.fdRefs that teardown sets.
const fdClosing = 1 << 30

// fdAcquire takes a use reference; false means the descriptor is closing.
func (c *Conn) fdAcquire() bool {
	for {
		r := c.fdRefs.Load()
		if r&fdClosing != 0 {
			return false
		}
		if c.fdRefs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// fdRelease drops a use reference, closing the descriptor if it was the last
// one after teardown.
func (c *Conn) fdRelease() {
	if c.fdRefs.Add(-1) == fdClosing {
		unix.Close(int(c.fd))
	}
}

// fdClose asks for the close: now if nobody uses the descriptor, else when
// the last user releases it. Called once, by teardown.
func (c *Conn) fdClose() {
	for {
		r := c.fdRefs.Load()
		if r&fdClosing != 0 {
			return
		}
		if c.fdRefs.CompareAndSwap(r, r|fdClosing) {
			if r == 0 {
				unix.Close(int(c.fd))
			}
			return
		}
	}
}

// accept4 takes one connection off the listening socket lfd, non-blocking
// and close-on-exec, with its peer's address. It makes the system call
// itself: unix.Accept4 also asks every IPv4 socket for its protocol (one
// getsockopt per accept, to tell L2TP apart) and allocates the address.
func accept4(lfd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(fd), rawAddrPort(&rsa), nil
}

// rawAddrPort decodes an IPv4 or IPv6 socket address (the port is in
// network byte order); anything else gives the zero AddrPort.
func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netPort(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), netPort(sa.Port))
	}
	return netip.AddrPort{}
}

// netPort converts a port stored in network byte order.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// readInto does one non-blocking read into the free capacity of *bp and
// extends it. It returns io.EOF at end of stream, unix.EAGAIN when nothing
// was there, and ErrClosed after teardown.
func (c *Conn) readInto(bp *[]byte) (int, error) {
	if !c.fdAcquire() {
		return 0, ErrClosed
	}
	b := *bp
	var n int
	var err error
	for {
		n, err = rawsys.Read(int(c.fd), b[len(b):cap(b)])
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	c.fdRelease()
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, errEOF
	}
	*bp = b[:len(b)+n]
	return n, nil
}

// setUserTimeout sets the socket's TCP_USER_TIMEOUT to d (none when d is not
// positive or the socket is closing): the kernel ends the connection when
// written bytes stay unacknowledged that long.
func (c *Conn) setUserTimeout(d time.Duration) {
	if d <= 0 || !c.fdAcquire() {
		return
	}
	_ = unix.SetsockoptInt(int(c.fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	c.fdRelease()
}

// writeRaw does one non-blocking write of b (EINTR retried) and returns
// how much went out.
func (c *Conn) writeRaw(b []byte) (int, error) {
	if !c.fdAcquire() {
		return 0, ErrClosed
	}
	defer c.fdRelease()
	for {
		n, err := rawsys.Write(int(c.fd), b)
		if !errors.Is(err, unix.EINTR) {
			return max(n, 0), err
		}
	}
}

// shutdownWrite half-closes the socket (FIN) so the peer sees our close.
func (c *Conn) shutdownWrite() error {
	if !c.fdAcquire() {
		return ErrClosed
	}
	defer c.fdRelease()
	return unix.Shutdown(int(c.fd), unix.SHUT_WR)
}

// maxIovecs bounds the buffers handed to one writev.
const maxIovecs = 256

// rawWriter is a writer goroutine's scratch: the iovec array for writev, the
// doorbell and timer for waiting until the socket is writable. It is pooled,
// so an exited writer leaves nothing allocated behind.
type rawWriter struct {
	iov   []unix.Iovec
	bufs  [][]byte      // the batch's buffers, from the start of the pooled array
	rest  [][]byte      // what is left to write: a suffix of bufs
	ready chan struct{} // signalled by the poller (EventWrite) or teardown
	timer *time.Timer   // write deadline while waiting; nil until first wait
	// zipped counts the batch's data frames that go out compressed.
	zipped int
}

var writerPool = sync.Pool{New: func() any {
	return &rawWriter{
		iov:   make([]unix.Iovec, 0, maxIovecs),
		bufs:  make([][]byte, 0, queueCap),
		ready: make(chan struct{}, 1),
	}
}}

// writev writes iov with one system call: writev(2), or write(2) for a
// single buffer (a broadcast's usual batch), which skips the kernel's copy
// and checks of the iovec array.
func writev(fd int32, iov []unix.Iovec) (int, error) {
	nr, p, cnt := uintptr(unix.SYS_WRITEV), unsafe.Pointer(&iov[0]), uintptr(len(iov))
	if len(iov) == 1 {
		nr, p, cnt = unix.SYS_WRITE, unsafe.Pointer(iov[0].Base), uintptr(iov[0].Len)
	}
	n, _, e := unix.RawSyscall(nr, uintptr(fd), uintptr(p), cnt)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// writeBatch writes every buffer in w.rest with as few writev calls as the
// socket allows. With wait it waits for writability when the kernel buffer
// is full; WriteTimeout bounds the time without progress, not the batch:
// every wait that follows bytes written starts a fresh timeout, so a slow
// but steadily reading client is not taken for a stuck one. Without wait a
// full socket returns errWouldBlock and w.rest is what is left. It
// implements socket.
func (c *Conn) writeBatch(w *rawWriter, wait bool) error {
	progress := true // the first wait gets a full timeout
	var deadline time.Time
	for len(w.rest) > 0 {
		w.iov = w.iov[:0]
		for _, b := range w.rest {
			if len(w.iov) == maxIovecs {
				break
			}
			if len(b) == 0 {
				continue
			}
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			w.iov = append(w.iov, v)
		}
		if len(w.iov) == 0 {
			return nil
		}
		if !c.fdAcquire() {
			return ErrClosed
		}
		n, err := writev(c.fd, w.iov)
		c.fdRelease()
		switch {
		case err == nil:
			c.srv.stats.Writes.Add(1)
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN) && !wait:
			return errWouldBlock
		case errors.Is(err, unix.EAGAIN):
			if progress {
				deadline = time.Now().Add(c.srv.cfg.WriteTimeout)
				progress = false
			}
			if err := c.waitWritable(w, deadline); err != nil {
				return err
			}
			continue
		default:
			return os.NewSyscallError("writev", err)
		}
		progress = progress || n > 0
		w.rest = advance(w.rest, n)
	}
	return nil
}

// advance drops the first n written bytes from bufs.
func advance(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if l := len(bufs[0]); n >= l {
			n -= l
			bufs = bufs[1:]
		} else {
			bufs[0] = bufs[0][n:]
			n = 0
		}
	}
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}

// waitWritable parks the writer goroutine until the poller reports the
// socket writable, the connection ends, or the deadline passes.
func (c *Conn) waitWritable(w *rawWriter, deadline time.Time) error {
	select { // drop a stale doorbell from an earlier wait
	case <-w.ready:
	default:
	}
	if !c.w.park(w.ready) {
		return ErrClosed
	}
	defer c.w.unpark()
	if err := c.poll.ArmWrite(int(c.fd)); err != nil {
		return ErrClosed
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.ready:
		w.timer.Stop()
	case <-w.timer.C:
		return os.ErrDeadlineExceeded
	}
	if c.w.closed() {
		return ErrClosed
	}
	return nil
}

// putWriter clears a writer scratch and returns it to the pool.
// Only the used length needs clearing: the writer fills bufs from 0 and
// writeBatch advances a copy, so entries past len were cleared before.
func putWriter(w *rawWriter) {
	clear(w.bufs)
	w.bufs, w.rest = w.bufs[:0], nil
	w.iov = w.iov[:0]
	w.zipped = 0
	writerPool.Put(w)
}
