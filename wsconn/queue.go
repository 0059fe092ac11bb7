package wsconn

import (
	"sync"

	"github.com/wspush/wspush/internal/bpool"
)

// entry is one frame waiting for the writer.
type entry struct {
	f    *bpool.Frame
	kind entryKind
}

type entryKind uint8

const (
	kindData    entryKind = iota // a delivery: counted against the limit, droppable
	kindControl                  // pong, ping or a command reply: never dropped
	kindFinal                    // close frame or HTTP refusal: the last thing written
	kindRaw                      // the 101 response; like control
)

// queueCap is the capacity of pooled entry slices; a batch that needs more
// grows past it and is not pooled again.
const queueCap = 64

var entryPool = sync.Pool{New: func() any { s := make([]entry, 0, queueCap); return &s }}

// outQueue is a connection's bounded out queue. All fields are guarded by mu.
// It holds no memory while empty: the entry slice comes from a pool when the
// first frame arrives and goes to the writer, which returns it to the pool.
type outQueue struct {
	mu      sync.Mutex
	items   *[]entry      // pending frames in order; nil when empty
	nData   int32         // kindData entries in items
	running bool          // a writer goroutine owns the write side now
	gated   bool          // the upgrade is not finished: no writer may start
	final   bool          // a kindFinal entry was queued: accept nothing more
	closed  bool          // torn down: accept nothing, the writer must exit
	wake    chan struct{} // persistent writer's doorbell (cap 1); nil on-demand
	// writeWait is the doorbell of a writer parked until the socket is
	// writable (see waitWritable); nil when no writer waits.
	writeWait chan struct{}
}

// appendLocked adds e and reports whether the caller must start a writer.
func (q *outQueue) appendLocked(e entry) (start bool) {
	if q.items == nil {
		q.items = entryPool.Get().(*[]entry)
	}
	*q.items = append(*q.items, e)
	if e.kind == kindData {
		q.nData++
	}
	switch {
	case q.gated:
		return false
	case q.wake != nil: // persistent writer: ring its doorbell
		select {
		case q.wake <- struct{}{}:
		default:
		}
		return false
	case q.running:
		return false
	}
	q.running = true
	return true
}

// dropOldestLocked removes the oldest data entry and returns its frame.
func (q *outQueue) dropOldestLocked() *bpool.Frame {
	s := *q.items
	for i := range s {
		if s[i].kind == kindData {
			f := s[i].f
			copy(s[i:], s[i+1:])
			s[len(s)-1] = entry{}
			*q.items = s[:len(s)-1]
			q.nData--
			return f
		}
	}
	return nil
}

// takeLocked hands every pending entry to the writer.
func (q *outQueue) takeLocked() *[]entry {
	items := q.items
	q.items, q.nData = nil, 0
	return items
}

// Send queues a data frame for delivery. It owns one reference to f in every
// case and never blocks: when the queue is full it applies the SlowPolicy.
// It reports whether f was queued. Send implements hub.Subscriber.
func (c *Conn) Send(f *bpool.Frame) bool {
	q, st := &c.q, &c.srv.stats
	limit := int32(c.srv.cfg.SendQueue)
	q.mu.Lock()
	if q.closed || q.final {
		q.mu.Unlock()
		f.Release()
		st.LostClosed.Add(1)
		return false
	}
	var dropped *bpool.Frame
	if q.nData >= limit {
		switch c.srv.cfg.SlowPolicy {
		case DropNewest:
			q.mu.Unlock()
			f.Release()
			st.DroppedNewest.Add(1)
			return false
		case CloseSlow:
			q.mu.Unlock()
			f.Release()
			st.DroppedClose.Add(1)
			st.SlowClosed.Add(1)
			c.closeWith(&CloseError{Code: 1008, Reason: "slow consumer", Err: ErrSlowConsumer}, true)
			return false
		default:
			dropped = q.dropOldestLocked()
		}
	}
	start := q.appendLocked(entry{f: f, kind: kindData})
	q.mu.Unlock()
	if dropped != nil {
		dropped.Release()
		st.DroppedOldest.Add(1)
	}
	if start {
		c.startWriter()
	}
	return true
}

// sendControl queues a frame that is never dropped (pong, ping, reply). A
// connection with more than twice SendQueue frames pending is closed as a
// slow consumer instead. It owns one reference to f.
func (c *Conn) sendControl(f *bpool.Frame) bool {
	q := &c.q
	q.mu.Lock()
	if q.closed || q.final {
		q.mu.Unlock()
		f.Release()
		return false
	}
	if q.items != nil && len(*q.items) >= 2*c.srv.cfg.SendQueue {
		q.mu.Unlock()
		f.Release()
		c.srv.stats.SlowClosed.Add(1)
		c.closeWith(&CloseError{Code: 1008, Reason: "slow consumer", Err: ErrSlowConsumer}, true)
		return false
	}
	start := q.appendLocked(entry{f: f, kind: kindControl})
	q.mu.Unlock()
	if start {
		c.startWriter()
	}
	return true
}

// SendReply queues an application reply (a command ack or error) as a text
// frame with payload p. Replies keep their order with deliveries and are never
// dropped by the slow policy.
func (c *Conn) SendReply(p []byte) bool {
	f := bpool.NewFrame(len(p) + 10)
	f.B = appendFrameHeader(f.B, 0x1, len(p))
	f.B = append(f.B, p...)
	return c.sendControl(f)
}

// pushFinal queues the last frame of the connection (a close frame or an
// HTTP refusal). With discard, pending data frames are dropped first and
// counted under the close policy. It reports false if the queue was already
// finished or shut, in which case it released f.
func (c *Conn) pushFinal(f *bpool.Frame, discard bool) bool {
	q := &c.q
	var drop []*bpool.Frame
	q.mu.Lock()
	if q.closed || q.final {
		q.mu.Unlock()
		f.Release()
		return false
	}
	if discard && q.items != nil {
		s := (*q.items)[:0]
		for _, e := range *q.items {
			if e.kind == kindData {
				drop = append(drop, e.f)
				continue
			}
			s = append(s, e)
		}
		clear((*q.items)[len(s):])
		*q.items = s
		q.nData = 0
	}
	q.final = true
	start := q.appendLocked(entry{f: f, kind: kindFinal})
	q.mu.Unlock()
	for _, d := range drop {
		d.Release()
	}
	if n := len(drop); n > 0 {
		c.srv.stats.DroppedClose.Add(int64(n))
	}
	if start {
		c.startWriter()
	}
	return true
}

// openGate ends the handshake: resp (the 101 response, or with final an HTTP
// refusal) goes to the front of the queue, ahead of deliveries queued while
// subscribing, and the writer may start.
func (c *Conn) openGate(resp *bpool.Frame, final bool) {
	q := &c.q
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		resp.Release()
		return
	}
	if q.items == nil {
		q.items = entryPool.Get().(*[]entry)
	}
	*q.items = append(*q.items, entry{})
	copy((*q.items)[1:], *q.items)
	kind := kindRaw
	if final {
		kind, q.final = kindFinal, true
	}
	(*q.items)[0] = entry{f: resp, kind: kind}
	q.gated = false
	if c.srv.cfg.Writer == WriterPersistent && !final {
		q.wake = make(chan struct{}, 1)
	}
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// shutdown empties the queue at teardown, counting data frames as lost, and
// wakes a persistent writer so that it exits.
func (q *outQueue) shutdown(c *Conn) {
	q.mu.Lock()
	q.closed = true
	items := q.takeLocked()
	for _, ch := range [2]chan struct{}{q.wake, q.writeWait} {
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	q.mu.Unlock()
	if items == nil {
		return
	}
	lost := 0
	for _, e := range *items {
		if e.kind == kindData {
			lost++
		}
		e.f.Release()
	}
	c.srv.stats.LostClosed.Add(int64(lost))
	putEntries(items)
}

// putEntries returns an entry slice to the pool (only the standard size).
func putEntries(items *[]entry) {
	if cap(*items) != queueCap {
		return
	}
	clear(*items)
	*items = (*items)[:0]
	entryPool.Put(items)
}

// Pending reports how many frames are queued for the connection.
func (c *Conn) Pending() int {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	if c.q.items == nil {
		return 0
	}
	return len(*c.q.items)
}
