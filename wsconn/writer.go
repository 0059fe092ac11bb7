package wsconn

import (
	"sync"
	"sync/atomic"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/slowpolicy"
)

// The write side of a connection is one writer: a bounded out queue and a
// claim on the socket (wRunning). Producers (Send, replies, pongs, pings,
// the close) only push; whoever holds the claim alone takes what is queued
// and writes it: a flusher (flush.go) while the socket keeps up, else the
// connection's writer goroutine (run), persistent or on demand. The
// full-queue policy lives here too, so the connection never reasons about
// queue contents.
//
// A delivery may carry its own policy (bpool.Frame.Slow and Conflate, set
// by the hub from its topic's --topic-policy). A conflated delivery takes
// the place of the queued, unwritten delivery with the same key, whose
// frame is released and counted (Stats.Conflated), so a queue holds at most
// one unwritten message per conflated topic run and replacing one neither
// grows the queue nor applies a full-queue policy. Only when no entry has
// its key does it count against the limit like any delivery. On a full
// queue a delivery's own policy (close, drop-oldest, drop-newest) applies,
// else the Server's SlowPolicy; a conflated one that found nothing to
// replace applies the Server's. Every other entry (replies, pings, the
// final frame) and the pressure flag work the same for every delivery.

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

// A queue starts in a small pooled slice: a fan-out queues one frame per
// connection, and 19,000 recipients holding a 64-entry slice each would
// take 19 MiB for a 128-byte broadcast. A queue that fills it moves to a
// queueCap slice; one that needs more grows past that and is not pooled
// again.
const (
	queueSmall = 4
	queueCap   = 64
)

var (
	smallEntries = sync.Pool{New: func() any { s := make([]entry, 0, queueSmall); return &s }}
	entryPool    = sync.Pool{New: func() any { s := make([]entry, 0, queueCap); return &s }}
)

// queuePolicy is what every writer of a Server shares: the bound, the
// Server's full-queue policy (a delivery's own, bpool.Frame.Slow, comes
// first), the writer's lifetime, the counters and the pacing flag.
// Immutable after NewServer but for the atomics (counters, pressure).
type queuePolicy struct {
	limit      int32 // data frames one queue holds (Config.SendQueue)
	slow       SlowPolicy
	persistent bool   // Config.Writer == WriterPersistent
	stats      *Stats // the Server's counters
	// pressure is set by a push that leaves a queue pressureAt frames
	// deep or more: the flushers are behind, and the next batch's end
	// waits for them (Server.EndBatch). Cleared by the flushers at each
	// round.
	pressure atomic.Bool
	// pressureAt is three quarters of limit: deep enough that frames
	// queued together share a write (at half the limit: 999k deliveries/s
	// at 0.87 CPU-s per million; at three quarters 1.11M at 0.79, 0 drops,
	// p99 455 -> 505 ms; BENCHMARKS.md), with room left for the publishes
	// already under way when the pacing starts.
	pressureAt int32
}

// Writer states, as bits of writer.flags.
const (
	wGated       uint8 = 1 << iota // the upgrade is not finished: no writer may start
	wRunning                       // a writer goroutine owns the socket's write side
	wFinal                         // a kindFinal entry was queued: accept nothing more
	wClosed                        // the connection is ending: accept nothing, the goroutine exits
	wSlow                          // a push already reported pushSlow
	wPingOwed                      // a keepalive is due: the next push carries it, else the sweeper writes it
	wDelivered                     // a batch with a delivery was taken since the sweeper's last keepalive look
	wUserTimeout                   // the socket's TCP_USER_TIMEOUT is set (by its first round proven by deliveries)
)

// writer is a connection's write side. Every field but pol is guarded by mu.
// It holds no memory while empty: the entry slice comes from a pool with the
// first frame and goes back once written. The queue owns one reference to
// each frame in items; whoever removes an entry (the writer that took it,
// a drop, a conflated replacement, close) releases that reference, after
// unlocking mu. A non-empty queue always has its writer (wRunning or the
// persistent goroutine) or waits for the upgrade (wGated), so a push that
// only replaces an entry starts nothing.
type writer struct {
	pol *queuePolicy // immutable

	mu    sync.Mutex
	items *[]entry // pending frames in order; nil when empty
	nData int32    // kindData entries in items
	flags uint8    // wGated, wRunning, ...
	// deflate: the connection negotiated permessage-deflate, so data
	// frames go out in their compressed encoding (deflate.go). Not guarded:
	// set on the worker during the upgrade, before the connection can be
	// subscribed or a writer start, and read-only after.
	deflate bool
	wake    chan struct{} // persistent goroutine's doorbell (cap 1); nil on-demand
	// writeWait is the doorbell of the goroutine parked until the socket is
	// writable (see waitWritable); nil when it is not parked.
	writeWait chan struct{}
}

// pushResult is what a push did with its frame.
type pushResult uint8

const (
	pushed      pushResult = iota // queued; the running writer will write it
	pushedStart                   // queued; the caller must start the writer goroutine
	refused                       // not queued and released: dropped by the policy or the queue is finished (counted)
	pushSlow                      // not queued and released: the caller must close the connection as a slow consumer (said once)
)

// started turns a push result into "start the goroutine".
func (r pushResult) started() bool { return r == pushedStart }

// push queues f (data or control). It owns one reference to f in every case
// and never blocks. Conflated data replaces its topic's queued message (see
// conflateLocked). A full queue applies f's own policy to data, else the
// SlowPolicy; a connection with more than twice the limit pending (control
// frames are never dropped) is a slow consumer whatever the policy.
func (w *writer) push(f *bpool.Frame, kind entryKind) pushResult {
	st := w.pol.stats
	var dropped *bpool.Frame
	w.mu.Lock()
	if w.flags&(wClosed|wFinal) != 0 {
		w.mu.Unlock()
		f.Release()
		if kind == kindData {
			st.LostClosed.Add(1)
		}
		return refused
	}
	if kind == kindData && f.Conflate != 0 {
		if old := w.conflateLocked(f); old != nil {
			w.mu.Unlock()
			old.Release()
			st.Conflated.Add(1)
			return pushed // the queue was not empty: its writer is there
		}
	}
	switch {
	case kind == kindData && w.nData >= w.pol.limit:
		switch w.slowFor(f) {
		case DropNewest:
			w.mu.Unlock()
			f.Release()
			st.DroppedNewest.Add(1)
			return refused
		case CloseSlow:
			st.DroppedClose.Add(1)
			return w.refuseSlowLocked(f)
		}
		dropped = w.dropOldestLocked()
	case kind != kindData && w.items != nil && len(*w.items) >= 2*int(w.pol.limit):
		return w.refuseSlowLocked(f)
	}
	r := w.appendLocked(entry{f: f, kind: kind})
	carried := w.flags&wPingOwed != 0
	if carried {
		w.flags &^= wPingOwed
		w.addLocked(entry{f: pingFrame, kind: kindControl}, false)
	}
	deep := w.nData >= w.pol.pressureAt
	w.mu.Unlock()
	if carried {
		st.PingsCarried.Add(1)
	}
	if deep && !w.pol.pressure.Load() {
		w.pol.pressure.Store(true)
	}
	if dropped != nil {
		dropped.Release()
		st.DroppedOldest.Add(1)
	}
	return r
}

// slowFor is the full-queue policy for the delivery f: its own (set by the
// hub from its topic's), else the Server's SlowPolicy (slowpolicy.Default,
// and a conflated delivery that found nothing to replace).
func (w *writer) slowFor(f *bpool.Frame) SlowPolicy {
	switch f.Slow {
	case slowpolicy.DropOldest:
		return DropOldest
	case slowpolicy.DropNewest:
		return DropNewest
	case slowpolicy.Close:
		return CloseSlow
	}
	return w.pol.slow
}

// conflateLocked puts the delivery f in the place of the queued delivery
// with f's conflation key and returns that one's frame (the caller releases
// it after unlocking), or nil when no entry has the key. The entry is
// replaced in place when only conflated deliveries follow it. When anything
// else follows (a reply, recovered messages, a reset, a plain delivery, a
// ping) the old entry is taken out and f goes to the back instead, so f
// never overtakes what was queued after the old one: a reply to a command
// still comes before every delivery published after the command. Other
// entries keep their order either way; only the order between two
// conflated topics' messages may change. w.mu must be held.
func (w *writer) conflateLocked(f *bpool.Frame) *bpool.Frame {
	if w.items == nil {
		return nil
	}
	s := *w.items
	inPlace := true
	for i := len(s) - 1; i >= 0; i-- {
		e := s[i]
		if e.kind == kindData && e.f.Conflate == f.Conflate {
			if inPlace {
				s[i].f = f
			} else {
				copy(s[i:], s[i+1:])
				s[len(s)-1] = entry{f: f, kind: kindData}
			}
			return e.f
		}
		if e.kind != kindData || e.f.Conflate == 0 {
			inPlace = false
		}
	}
	return nil
}

// refuseSlowLocked releases f and reports pushSlow the first time, refused
// after. It unlocks w.mu.
func (w *writer) refuseSlowLocked(f *bpool.Frame) pushResult {
	first := w.flags&wSlow == 0
	w.flags |= wSlow
	w.mu.Unlock()
	f.Release()
	if first {
		return pushSlow
	}
	return refused
}

// pushFinal queues the last frame of the connection (a close frame). With
// discard, pending data frames are dropped first and counted under the close
// policy. It owns one reference to f; refused means the queue was finished
// already.
func (w *writer) pushFinal(f *bpool.Frame, discard bool) pushResult {
	var drop []*bpool.Frame
	w.mu.Lock()
	if w.flags&(wClosed|wFinal) != 0 {
		w.mu.Unlock()
		f.Release()
		return refused
	}
	if discard && w.items != nil {
		s := (*w.items)[:0]
		for _, e := range *w.items {
			if e.kind == kindData {
				drop = append(drop, e.f)
				continue
			}
			s = append(s, e)
		}
		clear((*w.items)[len(s):])
		*w.items = s
		w.nData = 0
	}
	w.flags |= wFinal
	r := w.appendLocked(entry{f: f, kind: kindFinal})
	w.mu.Unlock()
	for _, d := range drop {
		d.Release()
	}
	if n := len(drop); n > 0 {
		w.pol.stats.DroppedClose.Add(int64(n))
	}
	return r
}

// appendLocked adds e and says whether the caller must start the goroutine.
func (w *writer) appendLocked(e entry) pushResult {
	w.addLocked(e, false)
	if e.kind == kindData {
		w.nData++
	}
	switch {
	case w.flags&wGated != 0:
		return pushed
	case w.wake != nil: // persistent goroutine: ring its doorbell
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return pushed
	case w.flags&wRunning != 0:
		return pushed
	}
	w.flags |= wRunning
	return pushedStart
}

// addLocked puts e at the back of the queue, or with front at its front.
// It moves a full small slice to a queueCap one. w.mu must be held.
func (w *writer) addLocked(e entry, front bool) {
	switch {
	case w.items == nil:
		w.items = smallEntries.Get().(*[]entry)
	case len(*w.items) == queueSmall && cap(*w.items) == queueSmall:
		big := entryPool.Get().(*[]entry)
		*big = append(*big, *w.items...)
		putEntries(w.items)
		w.items = big
	}
	if !front {
		*w.items = append(*w.items, e)
		return
	}
	*w.items = append(*w.items, entry{})
	copy((*w.items)[1:], *w.items)
	(*w.items)[0] = e
}

// dropOldestLocked removes the oldest data entry and returns its frame.
func (w *writer) dropOldestLocked() *bpool.Frame {
	s := *w.items
	for i := range s {
		if s[i].kind == kindData {
			f := s[i].f
			copy(s[i:], s[i+1:])
			s[len(s)-1] = entry{}
			*w.items = s[:len(s)-1]
			w.nData--
			return f
		}
	}
	return nil
}

// open ends the handshake: resp (the 101 response, or with final an HTTP
// refusal) goes to the front of the queue, ahead of deliveries queued while
// the Handler subscribed, and a writer may start. It reports whether the
// caller must start the goroutine; false and resp released when the
// connection is ending.
func (w *writer) open(resp *bpool.Frame, final bool) bool {
	w.mu.Lock()
	if w.flags&wClosed != 0 {
		w.mu.Unlock()
		resp.Release()
		return false
	}
	kind := kindRaw
	if final {
		kind = kindFinal
		w.flags |= wFinal
	}
	w.addLocked(entry{f: resp, kind: kind}, true)
	w.flags &^= wGated
	if w.pol.persistent && !final {
		w.wake = make(chan struct{}, 1)
	}
	start := w.flags&wRunning == 0
	w.flags |= wRunning
	w.mu.Unlock()
	return start
}

// idleLocked reports whether the write side is free for a direct write:
// upgraded, nothing queued, no goroutine or claim, not finishing. w.mu must
// be held.
func (w *writer) idleLocked() bool {
	return w.items == nil && w.wake == nil && w.flags&(wGated|wRunning|wFinal|wClosed) == 0
}

// keepaliveAction is what a connection's keepalive round does, as
// writer.keepalive decides it.
type keepaliveAction uint8

const (
	keepaliveProven keepaliveAction = iota // deliveries were written since the last round: no ping
	keepaliveFirst                         // proven so for the first time: the caller sets TCP_USER_TIMEOUT
	keepaliveOwed                          // idle: the ping is owed (a push carries it, else the sweeper writes it)
	keepaliveQueue                         // busy: the caller queues the ping behind what is pending
)

// keepalive is the write side's part of a keepalive round. Deliveries taken
// for writing since the last round prove the peer alive (once the socket's
// TCP_USER_TIMEOUT is set, which the first such round asks for: the kernel
// then ends a connection whose written bytes stay unacknowledged that
// long), so the round needs no ping; the mark is cleared, so that the next
// round pings unless more were taken meanwhile. Otherwise an idle write
// side is marked as owing the ping: a push before the sweeper's next sweep
// carries it in the same write, and otherwise that sweep writes it
// (payPing).
func (w *writer) keepalive() keepaliveAction {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.flags&wDelivered != 0:
		w.flags &^= wDelivered
		if w.flags&wUserTimeout == 0 {
			w.flags |= wUserTimeout
			return keepaliveFirst
		}
		return keepaliveProven
	case !w.idleLocked():
		return keepaliveQueue
	}
	w.flags |= wPingOwed
	return keepaliveOwed
}

// payPing takes back a keepalive that keepalive marked owed and no push
// carried, together with the write side: true means the caller holds the claim and
// writes the 2 bytes itself (one write(2), no goroutine), then gives the
// claim back with releaseClaim. A push since the mark would have carried
// the ping, so the write side is still idle unless the connection is
// finishing, which needs no ping.
func (w *writer) payPing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	owed := w.flags&wPingOwed != 0
	w.flags &^= wPingOwed
	if !owed || !w.idleLocked() {
		return false
	}
	w.flags |= wRunning
	return true
}

// releaseClaim gives back what payPing took. rest, when not nil, is what
// the caller could not write (a partial write): it goes to the front of the
// queue. It reports whether the caller must start the writer goroutine (rest
// or pushes queued meanwhile); the claim then passes to that goroutine.
func (w *writer) releaseClaim(rest *bpool.Frame) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rest != nil && w.flags&wClosed == 0 {
		w.addLocked(entry{f: rest, kind: kindControl}, true)
	} else if rest != nil {
		rest.Release()
	}
	if w.items != nil && w.flags&wClosed == 0 {
		return true
	}
	w.flags &^= wRunning
	return false
}

// keepClaim is for a flusher that wrote a batch: it keeps the write side
// (and reports true) when more was queued meanwhile, else gives it back.
func (w *writer) keepClaim() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.items != nil {
		return true
	}
	w.flags &^= wRunning
	return false
}

// take hands the goroutine everything pending (marking wDelivered when it
// holds a delivery: see keepalive). With nothing pending it returns the
// doorbell to wait on (persistent), or nil when the goroutine must exit
// (on-demand, or the connection is ending).
func (w *writer) take() (*[]entry, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if items := w.items; items != nil {
		if w.nData > 0 {
			w.flags |= wDelivered
		}
		w.items, w.nData = nil, 0
		return items, nil
	}
	if w.flags&wClosed != 0 || w.wake == nil {
		w.flags &^= wRunning
		return nil, nil
	}
	return nil, w.wake
}

// close shuts the queue when the connection ends: nothing more is accepted,
// what is still queued is released and its data counted as lost, and a
// waiting goroutine is woken so that it exits.
func (w *writer) close() {
	w.mu.Lock()
	w.flags |= wClosed
	items := w.items
	w.items, w.nData = nil, 0
	for _, ch := range [2]chan struct{}{w.wake, w.writeWait} {
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	w.mu.Unlock()
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
	w.pol.stats.LostClosed.Add(int64(lost))
	putEntries(items)
}

// closed reports whether the connection is ending.
func (w *writer) closed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flags&wClosed != 0
}

// park registers ch as the doorbell of a goroutine about to wait for the
// socket to drain; false means the connection is ending. unpark undoes it.
func (w *writer) park(ch chan struct{}) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flags&wClosed != 0 {
		return false
	}
	w.writeWait = ch
	return true
}

func (w *writer) unpark() {
	w.mu.Lock()
	w.writeWait = nil
	w.mu.Unlock()
}

// writable rings the parked goroutine's doorbell (the socket drained).
func (w *writer) writable() {
	w.mu.Lock()
	ch := w.writeWait
	w.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// len reports how many frames are queued.
func (w *writer) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.items == nil {
		return 0
	}
	return len(*w.items)
}

// putEntries returns an entry slice to its pool (only the two standard
// sizes).
func putEntries(items *[]entry) {
	clear(*items)
	*items = (*items)[:0]
	switch cap(*items) {
	case queueSmall:
		smallEntries.Put(items)
	case queueCap:
		entryPool.Put(items)
	}
}
