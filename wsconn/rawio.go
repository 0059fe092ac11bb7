package wsconn

import (
	"errors"
	"io"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawReader is a worker's scratch for one non-blocking read through
// syscall.RawConn. Its callback is built once per pooled object, so a read
// allocates nothing and never parks the goroutine: the callback always
// reports done, EAGAIN included.
type rawReader struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var readerPool = sync.Pool{New: func() any {
	r := new(rawReader)
	r.fn = r.read
	return r
}}

func (r *rawReader) read(fd uintptr) bool {
	for {
		n, err := unix.Read(int(fd), r.p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		r.n, r.err = n, err
		return true
	}
}

// readInto does one non-blocking read into the free capacity of *bp and
// extends it. It returns io.EOF at end of stream, and unix.EAGAIN when
// nothing was there.
func (c *Conn) readInto(bp *[]byte) (int, error) {
	b := *bp
	r := readerPool.Get().(*rawReader)
	r.p = b[len(b):cap(b)]
	r.n, r.err = 0, nil
	err := c.raw.Read(r.fn)
	n, rerr := r.n, r.err
	r.p = nil
	readerPool.Put(r)
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	*bp = b[:len(b)+n]
	return n, nil
}

// maxIovecs bounds the buffers handed to one writev.
const maxIovecs = 256

// rawWriter is a writer goroutine's scratch: the iovec array for writev and
// the callback for syscall.RawConn.Write, pooled so that an exited writer
// leaves nothing allocated behind.
type rawWriter struct {
	iov  []unix.Iovec
	bufs [][]byte // what is left to write
	n    int
	err  error
	fn   func(fd uintptr) bool
}

var writerPool = sync.Pool{New: func() any {
	w := &rawWriter{iov: make([]unix.Iovec, 0, maxIovecs), bufs: make([][]byte, 0, queueCap)}
	w.fn = w.write
	return w
}}

// write does one writev of w.iov. Returning false on EAGAIN makes
// RawConn.Write wait (honouring the write deadline) until the socket is
// writable, then call again.
func (w *rawWriter) write(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		switch e {
		case 0:
			w.n, w.err = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			w.n, w.err = 0, e
			return true
		}
	}
}

// writeAll writes every buffer in w.bufs with as few writev calls as the
// socket allows.
func (c *Conn) writeAll(w *rawWriter) error {
	for len(w.bufs) > 0 {
		w.iov = w.iov[:0]
		for _, b := range w.bufs {
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
			w.bufs = w.bufs[:0]
			return nil
		}
		w.n, w.err = 0, nil
		if err := c.raw.Write(w.fn); err != nil {
			return err
		}
		if w.err != nil {
			return w.err
		}
		// Advance past what was written.
		n := w.n
		for n > 0 && len(w.bufs) > 0 {
			if l := len(w.bufs[0]); n >= l {
				n -= l
				w.bufs[0] = nil
				w.bufs = w.bufs[1:]
			} else {
				w.bufs[0] = w.bufs[0][n:]
				n = 0
			}
		}
		for len(w.bufs) > 0 && len(w.bufs[0]) == 0 {
			w.bufs = w.bufs[1:]
		}
	}
	return nil
}
