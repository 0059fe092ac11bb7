package wsconn

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Flushers: the write path of an on-demand connection whose socket takes
// what it is given. A push that finds the write side idle (pushedStart)
// does not start a goroutine: it hands the connection, with its write side
// claimed (wRunning), to one of a few flusher goroutines. The flusher
// writes what is queued with one non-blocking writev and gives the write
// side back. Only when the socket is full does it start a writer goroutine,
// which finishes the batch (waiting for writability) and carries on as
// that connection's writer (writer.run). So an idle or keeping-up
// connection costs no goroutine, and a fan-out to 10,000 connections costs
// no goroutine start at all.
//
// Batching: during a fan-out (Server.BeginBatch .. EndBatch, which the hub
// calls around every publication) pushes only list their connections; the
// end of the batch rings the flushers. Frames that arrive for a connection
// while it waits on a list join its one write, so under load a write carries
// several deliveries. Outside a batch a push rings at once.
//
// A flusher never waits on a client: a write that would block is handed to
// a goroutine. Lock order: writer.mu is never held while flusher.mu is
// taken, and flusher.mu is held only to append to or swap the list.

// flusher is one flusher goroutine and the connections waiting for it.
type flusher struct {
	mu    sync.Mutex
	dirty []*Conn // connections whose write side this flusher holds; guarded by mu
	spare []*Conn // the flusher goroutine's: the list it swaps in; not shared
	// round counts the lists the flusher swapped in; guarded by mu.
	// roundEnd is signalled (Broadcast) each time it moves.
	round    uint64
	roundEnd sync.Cond // L is &mu

	queued atomic.Bool   // dirty is not empty: a ring is worth sending
	busy   atomic.Bool   // the flusher goroutine is writing (between a ring and its sleep)
	bell   chan struct{} // cap 1: work was listed
}

// flusherFor is the flusher a connection's writes go through.
func (s *Server) flusherFor(c *Conn) *flusher {
	return &s.flushers[int(c.fd)%len(s.flushers)]
}

// startFlushers makes n flushers and their goroutines (stopped by done).
func (s *Server) startFlushers(n int) {
	s.flushers = make([]flusher, max(n, 1))
	for i := range s.flushers {
		f := &s.flushers[i]
		f.bell = make(chan struct{}, 1)
		f.roundEnd.L = &f.mu
		s.wg.Add(1)
		go s.flushLoop(f)
	}
}

// list hands c, whose write side the caller claimed, to its flusher. ring
// wakes the flusher now; otherwise the batch's end does.
func (s *Server) list(c *Conn, ring bool) {
	f := s.flusherFor(c)
	f.mu.Lock()
	f.dirty = append(f.dirty, c)
	f.mu.Unlock()
	f.queued.Store(true)
	if ring {
		f.ring()
	}
}

func (f *flusher) ring() {
	select {
	case f.bell <- struct{}{}:
	default:
	}
}

// BeginBatch opens a batch of sends (a fan-out): until the matching
// EndBatch, a push that hands a connection to a flusher does not wake it,
// so frames queued together go out in one write per connection. Batches
// may overlap; each must end.
func (s *Server) BeginBatch() { s.batches.Add(1) }

// EndBatch closes a batch and wakes every flusher that has work listed.
// When the flushers are behind (a queue was left three quarters full), the caller
// also waits for each busy flusher to start its next round: publishers are
// paced by the sockets instead of filling the queues until the slow policy
// drops, and while they run ahead, what they queue joins each connection's
// next write. The wait is for a flusher, never for a client: a flusher's
// writes do not block.
func (s *Server) EndBatch() {
	s.batches.Add(-1)
	behind := s.qpol.pressure.Load()
	for i := range s.flushers {
		f := &s.flushers[i]
		if !f.queued.Load() {
			continue
		}
		if !f.busy.Load() {
			f.ring()
			continue
		}
		if behind {
			f.waitRound()
		}
	}
}

// waitRound waits until a busy flusher swaps in its next list.
func (f *flusher) waitRound() {
	f.mu.Lock()
	for r := f.round; f.round == r && f.busy.Load(); {
		f.roundEnd.Wait()
	}
	f.mu.Unlock()
}

// flushList writes every connection on list and clears it; the ones with
// more queued meanwhile are listed again.
func (s *Server) flushList(list []*Conn) {
	for _, c := range list {
		if c.flushOnce() {
			s.list(c, false)
		}
	}
	clear(list)
}

// flushLoop is a flusher goroutine: on each ring it writes every listed
// connection, round after round while connections stay listed (more was
// queued for them while they were written), then sleeps.
func (s *Server) flushLoop(f *flusher) {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-f.bell:
		}
		f.busy.Store(true)
		for {
			f.mu.Lock()
			list := f.dirty
			f.dirty = f.spare[:0]
			f.round++
			s.qpol.pressure.Store(false)
			if len(list) == 0 {
				f.queued.Store(false)
				f.busy.Store(false)
			}
			f.roundEnd.Broadcast()
			f.mu.Unlock()
			f.spare = list
			if len(list) == 0 {
				break
			}
			s.flushList(list)
		}
	}
}

// flushOnce writes what c has queued without waiting. It reports whether c
// must be listed again: more was queued meanwhile and the write side is
// still the flusher's. A socket that cannot take everything gets a writer
// goroutine, which inherits the batch and the write side.
func (c *Conn) flushOnce() bool {
	w := &c.w
	items, _ := w.take()
	if items == nil {
		return false // take gave the write side back
	}
	rw := fillWriter(items, w.deflate)
	err := c.writeBatch(rw, false)
	if errors.Is(err, errWouldBlock) {
		c.srv.stats.Writers.Add(1)
		go w.run(c, items, rw)
		return false
	}
	if !w.finish(c, items, rw, err) {
		return false
	}
	return w.keepClaim()
}
