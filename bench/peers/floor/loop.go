package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// maxRequest bounds an upgrade request's head; larger ones get 431.
	maxRequest = 8 << 10
	// readBuf is each loop's shared read buffer.
	readBuf = 64 << 10
	// acceptBatch bounds accepts per listener event, for fairness.
	acceptBatch = 64

	epollIn  = unix.EPOLLIN | unix.EPOLLRDHUP
	epollOut = epollIn | unix.EPOLLOUT
)

// loop is one epoll event loop. The fields above mu are touched only by
// the loop's own goroutine (wakefd is also written by any goroutine, and
// stopping is atomic).
type loop struct {
	s        *server
	epfd     int
	lnfd     int
	wakefd   int     // eventfd: markDirty and stop wake the loop through it
	spare    int     // reserved fd, given up to shed a connection on EMFILE
	conns    []*conn // indexed by fd
	events   [256]unix.EpollEvent
	rbuf     []byte
	ctl      [2 + maxControl]byte // scratch for pong and close frames
	evbuf    [8]byte              // scratch for reading wakefd
	flushing []*conn              // the dirty list being flushed; swapped with dirty, reused
	stopping atomic.Bool          // set by stop before it wakes the loop

	// Coalesce mode: publishers add connections with new pending bytes to
	// dirty; the loop swaps the list out and flushes each connection with
	// one write. woken is set by the publisher that adds to an empty batch
	// (it then writes wakefd, once its fan-out is done) and cleared by the
	// loop when it takes the batch, so there is at most one eventfd write
	// per batch, not one per delivery.
	//
	// started and ended count flush rounds (a round starts when the loop
	// takes the batch and ends when it has written it); a paced publisher
	// waits on roundEnd for the round it needs to end. exited is set when
	// run returns, so no publisher waits for a loop that is gone.
	dmu      sync.Mutex
	dirty    []*conn // guarded by dmu; reused
	woken    bool    // guarded by dmu: a wake for the current batch is on its way
	started  uint64  // guarded by dmu
	ended    uint64  // guarded by dmu
	exited   bool    // guarded by dmu
	roundEnd sync.Cond
}

func newLoop(s *server, lnfd int) (*loop, error) {
	l := &loop{s: s, lnfd: lnfd, epfd: -1, wakefd: -1, spare: -1, rbuf: make([]byte, readBuf)}
	l.roundEnd.L = &l.dmu
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		l.release()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.release()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{lnfd, l.wakefd} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			l.release()
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	l.spare, _ = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	return l, nil
}

// release closes the loop's own descriptors and connections.
func (l *loop) release() {
	for fd, c := range l.conns {
		if c != nil {
			c.mu.Lock()
			c.dead = true
			c.pending, c.inflight = nil, 0
			c.wbuf, c.woff = nil, 0
			_ = unix.Close(fd)
			c.mu.Unlock()
		}
	}
	l.conns = nil
	for _, fd := range []int{l.lnfd, l.wakefd, l.epfd, l.spare} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

// stop makes run return; safe from any goroutine.
func (l *loop) stop() {
	l.stopping.Store(true)
	l.wake()
}

// eventOne is the 8-byte 1 written to an eventfd; never modified (a
// shared array, so that a wake allocates nothing even where the slice
// escapes, as under -race).
var eventOne = [8]byte{1}

// wake adds one to the eventfd, which makes it readable. EAGAIN means the
// counter is already (absurdly) high, so the loop is woken anyway.
func (l *loop) wake() {
	for {
		_, err := unix.Write(l.wakefd, eventOne[:])
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// markDirty puts c (whose mu the caller holds) on the dirty list. It
// reports whether this starts a new batch: then the caller must wake the
// loop (l.wake), which it may put off until the end of its fan-out.
func (l *loop) markDirty(c *conn) bool {
	l.dmu.Lock()
	l.dirty = append(l.dirty, c)
	wake := !l.woken
	l.woken = true
	l.dmu.Unlock()
	return wake
}

// woke handles a readable eventfd: it resets the counter, then (unless
// stopping) flushes the dirty batch. It reports whether to keep running.
func (l *loop) woke() bool {
	for {
		_, err := unix.Read(l.wakefd, l.evbuf[:])
		if !errors.Is(err, unix.EINTR) {
			break // read, or EAGAIN: already reset
		}
	}
	if l.stopping.Load() {
		return false
	}
	l.flushDirty()
	return true
}

// flushDirty is one flush round: it takes the current dirty batch and
// makes one write per connection of everything pending on it (holding no
// lock during the writes), then wakes the publishers waiting for the
// round's end. The eventfd was reset before the batch is taken, so a
// connection marked after the swap wakes the loop again.
func (l *loop) flushDirty() {
	l.dmu.Lock()
	l.flushing, l.dirty = l.dirty, l.flushing
	l.woken = false
	l.started++
	l.dmu.Unlock()
	for i, c := range l.flushing {
		c.flushDirty()
		l.flushing[i] = nil
	}
	l.flushing = l.flushing[:0]
	l.dmu.Lock()
	l.ended = l.started
	l.roundEnd.Broadcast()
	l.dmu.Unlock()
}

// waitRound is a paced publisher's wait (after its fan-out and wakes):
// until the round the loop is in ends or, between rounds with a batch
// listed, until the next round ends. An idle loop with nothing listed, or
// one that has exited, is not waited for.
func (l *loop) waitRound() {
	l.dmu.Lock()
	target := l.started
	if l.started == l.ended {
		if len(l.dirty) == 0 {
			l.dmu.Unlock()
			return
		}
		target++ // listed, so a wake is on its way
	}
	for l.ended < target && !l.exited {
		l.roundEnd.Wait()
	}
	l.dmu.Unlock()
}

// exit releases any publisher waiting for this loop's rounds.
func (l *loop) exit() {
	l.dmu.Lock()
	l.exited = true
	l.roundEnd.Broadcast()
	l.dmu.Unlock()
}

func (l *loop) run() {
	defer l.release()
	defer l.exit()
	for {
		n, err := unix.EpollWait(l.epfd, l.events[:], -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			fmt.Fprintln(os.Stderr, "floor: epoll_wait:", err)
			return
		}
		for i := 0; i < n; i++ {
			ev := l.events[i]
			switch fd := int(ev.Fd); fd {
			case l.wakefd:
				if !l.woke() {
					return
				}
			case l.lnfd:
				l.accept()
			default:
				if fd < len(l.conns) && l.conns[fd] != nil {
					l.event(l.conns[fd], ev.Events)
				}
			}
		}
	}
}

func (l *loop) accept() {
	for i := 0; i < acceptBatch; i++ {
		fd, _, err := unix.Accept4(l.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch {
			case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
				continue
			case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
				l.shed()
			case !errors.Is(err, unix.EAGAIN):
				fmt.Fprintln(os.Stderr, "floor: accept4:", err)
			}
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		l.add(fd)
	}
}

// add makes fd one of the loop's connections, awaiting its upgrade
// request; on failure it closes fd and returns nil.
func (l *loop) add(fd int) *conn {
	c := &conn{fd: fd, l: l, handshaking: true}
	if fd >= len(l.conns) {
		grown := make([]*conn, max(fd+1, 2*len(l.conns), 1024))
		copy(grown, l.conns)
		l.conns = grown
	}
	l.conns[fd] = c
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: epollIn, Fd: int32(fd)}); err != nil {
		l.conns[fd] = nil
		_ = unix.Close(fd)
		return nil
	}
	return c
}

// shed accepts and immediately closes one connection using the spare fd,
// so a full fd table does not leave the listener readable forever.
func (l *loop) shed() {
	if l.spare < 0 {
		return
	}
	_ = unix.Close(l.spare)
	if fd, _, err := unix.Accept4(l.lnfd, unix.SOCK_CLOEXEC); err == nil {
		_ = unix.Close(fd)
	}
	l.spare, _ = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

func (l *loop) event(c *conn, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		c.flush()
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	// Level-triggered: one read per event; epoll reports again if more.
	n, err := unix.Read(c.fd, l.rbuf)
	if err != nil && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) {
		return
	}
	if err != nil || n <= 0 {
		l.closeConn(c)
		return
	}
	if !c.upgraded {
		l.handshake(c, l.rbuf[:n])
		return
	}
	l.frames(c, l.rbuf[:n])
}

// handshake accumulates the request head across reads (a partial head just
// waits for more bytes), then subscribes and sends the 101 followed by
// anything published to the connection in the meantime.
func (l *loop) handshake(c *conn, data []byte) {
	c.hs = append(c.hs, data...)
	req, used, err := parseUpgrade(c.hs)
	if errors.Is(err, errIncomplete) {
		if len(c.hs) > maxRequest {
			l.reject(c, &httpError{status: 431, msg: "request header too large"})
		}
		return
	}
	var he *httpError
	if errors.As(err, &he) {
		l.reject(c, he)
		return
	}
	l.s.subscribe(c, req.topics)
	if l.s.mode == modeCoalesce {
		// The 101 goes first in the write buffer; writeOut puts whatever
		// was published meanwhile behind it and writes both outside mu.
		c.wbuf = appendSwitching(make([]byte, 0, 160), req.key)
		c.mu.Lock()
		c.handshaking = false
		c.mu.Unlock()
		c.writeOut(false)
	} else {
		resp := appendSwitching(make([]byte, 0, 160), req.key)
		c.mu.Lock()
		c.handshaking = false
		if c.queued() > 0 {
			resp = append(resp, c.pending[c.poff:]...)
			c.pending, c.poff = c.pending[:0], 0
		}
		c.sendLocked(resp, true)
		c.mu.Unlock()
	}
	rest := c.hs[used:]
	c.hs = nil
	c.upgraded = true
	if len(rest) > 0 {
		l.frames(c, rest)
	}
}

// reject answers a bad upgrade with an HTTP error and closes.
func (l *loop) reject(c *conn, he *httpError) {
	_, _ = unix.Write(c.fd, he.response())
	l.closeConn(c)
}

// frames handles client frames: ping gets a pong, close is echoed and the
// connection closed, everything else is skipped.
func (l *loop) frames(c *conn, data []byte) {
	for len(data) > 0 {
		n, op, payload, err := c.fp.next(data)
		data = data[n:]
		if err != nil {
			l.closeConn(c)
			return
		}
		switch op {
		case opPing:
			c.sendCtl(l.control(opPong, payload))
		case opClose:
			c.sendCtl(l.control(opClose, payload))
			l.closeConn(c)
			return
		}
	}
}

// control builds an unmasked control frame in the loop's scratch buffer.
func (l *loop) control(op byte, payload []byte) []byte {
	l.ctl[0] = 0x80 | op
	l.ctl[1] = byte(len(payload))
	n := copy(l.ctl[2:], payload)
	return l.ctl[:2+n]
}

// closeConn unsubscribes c, makes a last attempt to write what is pending
// (e.g. a close echo), closes the fd and forgets it. In coalesce mode the
// last write is made after c is marked dead and mu released (publishers
// do not touch a dead conn's fd).
func (l *loop) closeConn(c *conn) {
	l.s.unsubscribe(c)
	c.mu.Lock()
	if l.s.mode == modeCoalesce {
		var last []byte
		if !c.dead {
			c.wbuf = append(c.wbuf, c.pending...)
			last = c.wbuf[c.woff:]
		}
		c.dead = true
		c.pending, c.inflight = nil, 0
		c.mu.Unlock()
		if len(last) > 0 {
			_, _ = unix.Write(c.fd, last)
		}
		c.wbuf, c.woff = nil, 0
		_ = unix.Close(c.fd) // also removes it from the epoll set
		l.conns[c.fd] = nil
		return
	}
	if !c.dead && c.queued() > 0 {
		_, _ = unix.Write(c.fd, c.pending[c.poff:])
	}
	c.dead = true
	c.pending, c.poff = nil, 0
	_ = unix.Close(c.fd) // also removes it from the epoll set
	c.mu.Unlock()
	l.conns[c.fd] = nil
}
