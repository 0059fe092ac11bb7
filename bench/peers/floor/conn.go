package main

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

// conn is one client socket. The loop-only fields are touched only by the
// owning loop's goroutine; the rest are guarded by mu, which publishers
// (net/http handler goroutines) and the owning loop both take. Lock order:
// topic.mu, then conn.mu, then loop.dmu.
type conn struct {
	fd int
	l  *loop

	// Owning loop only.
	hs       []byte      // upgrade request bytes until the head is complete
	upgraded bool        // 101 sent
	fp       frameParser // client frame state
	subs     []subRef    // set once at subscribe; subs[i].idx is guarded by subs[i].t.mu

	// Coalesce mode, owning loop only: the bytes the loop is writing
	// (wbuf[woff:] is unsent). The loop swaps pending out into wbuf under
	// mu and writes wbuf without holding mu; the two buffers trade places
	// round after round, so neither is reallocated in steady state.
	wbuf []byte
	woff int

	mu          sync.Mutex
	dead        bool   // closed, or failed and shut down awaiting the loop
	handshaking bool   // 101 not yet sent: queue, do not write
	pending     []byte // bytes not yet written; pending[poff:] is unsent; reused across flushes
	poff        int    // write-per-delivery only; always 0 in coalesce mode
	inflight    int    // coalesce mode: unsent bytes in wbuf as of the loop's last look (len(wbuf)-woff)
	outArmed    bool   // EPOLLOUT requested: the loop flushes pending on EPOLLOUT
	dirty       bool   // coalesce mode: on the owning loop's dirty list, a flush is due
	writes      uint64 // write syscalls that carried frames to this socket (tests read it)
}

// queued is the number of unsent bytes, pending plus (coalesce mode) the
// loop's write buffer; mu must be held.
func (c *conn) queued() int { return len(c.pending) - c.poff + c.inflight }

// send writes b or queues it (see sendLocked).
func (c *conn) send(b []byte) bool {
	c.mu.Lock()
	ok := c.sendLocked(b, true)
	c.mu.Unlock()
	return ok
}

// sendLocked writes b with one write syscall if nothing is queued, else
// (or for the part the kernel did not take) appends to pending and arms
// EPOLLOUT. Unless force is set, a frame that would push pending past
// maxPending is dropped whole, so frame boundaries stay intact. It reports
// whether b was written or queued. This is the write-per-delivery path, and
// the loop's own path for control frames in both modes.
func (c *conn) sendLocked(b []byte, force bool) bool {
	if c.dead {
		return false
	}
	if c.handshaking || c.queued() > 0 {
		return c.appendLocked(b, force)
	}
	n, err := write(c.fd, b)
	c.writes++
	if err != nil {
		if !errors.Is(err, unix.EAGAIN) {
			c.failLocked()
			return false
		}
		n = 0
	}
	if n < len(b) {
		c.l.s.eagain.Add(1)
		c.pending = append(c.pending, b[n:]...)
		c.armLocked(true)
	}
	return true
}

// appendLocked queues b behind what is pending; unless force is set, a
// frame that would push pending past maxPending is dropped whole (and
// counted). It reports whether b was queued.
func (c *conn) appendLocked(b []byte, force bool) bool {
	if !force && c.queued()+len(b) > c.l.s.maxPending {
		c.l.s.drops.Add(1)
		return false
	}
	if c.poff > 0 && c.poff >= len(c.pending)/2 {
		n := copy(c.pending, c.pending[c.poff:])
		c.pending, c.poff = c.pending[:n], 0
	}
	c.pending = append(c.pending, b...)
	return true
}

// queueLocked is the coalesce mode's delivery: append b to pending and, if
// no flush is due yet, put c on its loop's dirty list. It never writes. It
// reports whether b was queued, whether the caller must wake c's loop
// (markDirty started a new batch), and whether c's loop is behind: more
// than -pace bytes are queued on a connection whose socket is not full (a
// full socket is the client's doing, not the loop's).
func (c *conn) queueLocked(b []byte) (queued, wake, deep bool) {
	if c.dead || !c.appendLocked(b, false) {
		return false, false, false
	}
	// Handshaking: the 101 carries pending out. outArmed: EPOLLOUT will.
	if !c.dirty && !c.handshaking && !c.outArmed {
		c.dirty = true
		wake = c.l.markDirty(c)
	}
	deep = c.l.s.pace > 0 && !c.outArmed && c.queued() > c.l.s.pace
	return true, wake, deep
}

// flush runs on EPOLLOUT: one write of everything pending.
func (c *conn) flush() {
	if c.l.s.mode == modeCoalesce {
		c.writeOut(true)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.handshaking {
		return
	}
	c.writePendingLocked()
}

// flushDirty runs on the loop for a conn taken off its dirty list (coalesce
// mode): one write of everything pending, unless EPOLLOUT is armed (then
// the EPOLLOUT flush writes it) or the conn is gone.
func (c *conn) flushDirty() {
	c.mu.Lock()
	c.dirty = false
	c.mu.Unlock()
	c.writeOut(false)
}

// flushWrite is the write(2) of the coalesce mode's flushes, made without
// holding mu; a variable so a test can park the loop inside it.
var flushWrite = write

// writeOut is the coalesce mode's only socket write for frames, run by the
// owning loop: under mu it moves everything pending behind the unsent rest
// of wbuf (swapping the two buffers when wbuf is empty, the usual case;
// copying only after a partial write), then writes wbuf[woff:] with one
// write WITHOUT holding mu, so publishers keep appending to pending
// meanwhile. What the kernel does not take stays at the front of wbuf,
// ahead of anything pending, with EPOLLOUT armed. Unless onOut (the
// EPOLLOUT flush), it leaves an armed connection to EPOLLOUT.
func (c *conn) writeOut(onOut bool) {
	c.mu.Lock()
	if c.dead || c.handshaking || (c.outArmed && !onOut) {
		c.mu.Unlock()
		return
	}
	if len(c.pending) > 0 {
		if c.woff == len(c.wbuf) {
			c.wbuf, c.pending = c.pending, c.wbuf[:0]
			c.woff = 0
		} else {
			c.wbuf = append(c.wbuf, c.pending...)
			c.pending = c.pending[:0]
		}
	}
	out := c.wbuf[c.woff:]
	c.inflight = len(out)
	if len(out) == 0 {
		c.armLocked(false)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	n, err := flushWrite(c.fd, out)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		c.wbuf, c.woff = nil, 0
		c.failLocked()
		return
	}
	c.woff += n
	if c.woff < len(c.wbuf) {
		c.l.s.eagain.Add(1)
		c.inflight = len(c.wbuf) - c.woff
		c.armLocked(true)
		return
	}
	c.wbuf, c.woff, c.inflight = c.wbuf[:0], 0, 0
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // do not pin a burst's worth of memory
	}
	// Anything appended during the write is on the dirty list (its
	// publisher saw dirty and outArmed false) or, if EPOLLOUT is armed,
	// left for the next EPOLLOUT, which a writable socket reports at once.
	if len(c.pending) == 0 {
		c.armLocked(false)
	}
}

// sendCtl queues a control frame (pong, close echo) from the owning loop
// and writes it with writeOut: in coalesce mode the loop never writes while
// holding mu. In write-per-delivery mode it is send.
func (c *conn) sendCtl(b []byte) {
	if c.l.s.mode != modeCoalesce {
		c.send(b)
		return
	}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.appendLocked(b, true)
	c.mu.Unlock()
	c.writeOut(false)
}

// writePendingLocked makes one write of everything pending. What the
// kernel does not take stays queued with EPOLLOUT armed; once nothing is
// left, pending is emptied (keeping its capacity, up to 1 MiB, for reuse)
// and EPOLLOUT disarmed.
func (c *conn) writePendingLocked() {
	if q := c.queued(); q > 0 {
		n, err := write(c.fd, c.pending[c.poff:])
		c.writes++
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			c.failLocked()
			return
		}
		c.poff += n
		if n < q {
			c.l.s.eagain.Add(1)
		}
	}
	if c.queued() > 0 {
		c.armLocked(true)
		return
	}
	c.pending, c.poff = c.pending[:0], 0
	if cap(c.pending) > 1<<20 {
		c.pending = nil // do not pin a burst's worth of memory
	}
	c.armLocked(false)
}

// armLocked switches EPOLLOUT interest on or off.
func (c *conn) armLocked(on bool) {
	if c.outArmed == on {
		return
	}
	ev := unix.EpollEvent{Events: epollIn, Fd: int32(c.fd)}
	if on {
		ev.Events = epollOut
	}
	if err := unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		c.failLocked()
		return
	}
	c.outArmed = on
}

// failLocked gives up on a connection from any goroutine: it stops all
// further writes and shuts the socket down, which wakes the owning loop to
// unsubscribe and close it. Only the loop closes the fd, so the fd number
// cannot be reused while a publisher might still hold this conn.
func (c *conn) failLocked() {
	c.dead = true
	c.pending, c.poff, c.inflight = nil, 0, 0
	_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
}

func write(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

// topic is a subscriber list plus the topic's seq and frame buffer, all
// guarded by mu.
type topic struct {
	mu   sync.Mutex
	seq  uint64
	subs []subEntry
	buf  []byte
	wake []*loop // coalesce mode: loops to wake after the fan-out; reused
}

// subEntry and subRef link a conn and a topic both ways so unsubscribing is
// O(1) per topic: subs[ref] of entry.c points back at the entry's index.
type subEntry struct {
	c   *conn
	ref int
}

type subRef struct {
	t   *topic
	idx int
}

func (s *server) topic(name string) *topic {
	s.topicsMu.RLock()
	t := s.topics[name]
	s.topicsMu.RUnlock()
	if t != nil {
		return t
	}
	s.topicsMu.Lock()
	defer s.topicsMu.Unlock()
	if t = s.topics[name]; t == nil {
		t = &topic{}
		s.topics[name] = t
	}
	return t
}

// subscribe runs on c's loop before the 101 is sent.
func (s *server) subscribe(c *conn, names []string) {
	c.subs = make([]subRef, len(names)) // sized up front: other loops update idx fields
	for i, name := range names {
		t := s.topic(name)
		c.subs[i].t = t
		t.mu.Lock()
		c.subs[i].idx = len(t.subs)
		t.subs = append(t.subs, subEntry{c: c, ref: i})
		t.mu.Unlock()
	}
}

// unsubscribe runs on c's loop; swap-removes c from each topic.
func (s *server) unsubscribe(c *conn) {
	for k := range c.subs {
		t := c.subs[k].t
		t.mu.Lock()
		i, last := c.subs[k].idx, len(t.subs)-1 // idx may move until we hold t.mu
		if i != last {
			moved := t.subs[last]
			t.subs[i] = moved
			moved.c.subs[moved.ref].idx = i
		}
		t.subs[last] = subEntry{}
		t.subs = t.subs[:last]
		t.mu.Unlock()
	}
	c.subs = nil
}

// Publish implements peerutil.Publisher: frame once into the topic's
// buffer, then hand the frame to each subscriber: in coalesce mode append
// it to the connection's pending bytes for its loop to write (queue),
// wake the loops that got a new batch once the fan-out is done and, if a
// loop is behind, wait for its flush round after releasing the topic; in
// write-per-delivery mode one locked write (or queue) per subscriber.
func (s *server) Publish(name string, data []byte) (uint64, int, error) {
	t := s.topic(name)
	t.mu.Lock()
	t.seq++
	seq := t.seq
	if len(t.subs) == 0 {
		t.mu.Unlock()
		return seq, 0, nil
	}
	t.buf = appendFrame(t.buf[:0], opText, peerutil.MessageLen(name, seq, data))
	t.buf = peerutil.AppendMessage(t.buf, name, seq, data)
	if s.mode == modeCoalesce {
		n, deep := t.queue()
		t.mu.Unlock()
		if deep {
			s.pacePublisher()
		}
		return seq, n, nil
	}
	n := 0
	for _, e := range t.subs {
		e.c.mu.Lock()
		if e.c.sendLocked(t.buf, false) {
			n++
		}
		e.c.mu.Unlock()
	}
	t.mu.Unlock()
	return seq, n, nil
}

// pacePublisher (coalesce mode, -pace) makes a publisher whose fan-out
// found a loop behind wait for every loop's current flush round (or, for
// a loop between rounds with a batch listed, its next one) to end, so
// publishers run ahead of the loops by about a round instead of filling
// pending buffers up to -max-pending.
func (s *server) pacePublisher() {
	s.paced.Add(1)
	for _, l := range s.loops {
		l.waitRound()
	}
}

// queue is the coalesce mode's fan-out of t.buf (t.mu held): queue it on
// every subscriber, then wake each loop that got a new batch, once. It
// returns the number queued and whether any subscriber's loop is behind
// (queueLocked's deep).
func (t *topic) queue() (n int, deep bool) {
	for _, e := range t.subs {
		e.c.mu.Lock()
		ok, wake, d := e.c.queueLocked(t.buf)
		e.c.mu.Unlock()
		if ok {
			n++
		}
		deep = deep || d
		if wake {
			t.wake = append(t.wake, e.c.l)
		}
	}
	for i, l := range t.wake {
		l.wake()
		t.wake[i] = nil
	}
	t.wake = t.wake[:0]
	return n, deep
}
