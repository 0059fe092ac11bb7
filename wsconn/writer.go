package wsconn

import (
	"runtime"
	"time"
)

// startWriter launches the connection's writer goroutine. The caller has set
// q.running, so there is never a second writer on the socket.
func (c *Conn) startWriter() {
	c.srv.stats.Writers.Add(1)
	go c.writeLoop()
}

// writeLoop is the connection's only writer. It takes everything queued,
// writes it with writev under the write deadline, and repeats. On-demand it
// exits when the queue is empty; persistent it waits on the doorbell. On a
// write error or timeout it tears the connection down; after the final frame
// it half-closes the socket. Either way it releases every frame it took.
func (c *Conn) writeLoop() {
	defer c.srv.stats.Writers.Add(-1)
	q := &c.q
	// Yield once before the first write: the goroutine that started us is
	// usually a publish still fanning out (or a burst of publishes), and
	// frames that arrive meanwhile join this writer's first writev. Measured
	// A/B at 10,000 subscribers: +70% deliveries/s, -35% CPU per delivery,
	// about +7% on a single broadcast's p99 (BENCHMARKS.md).
	runtime.Gosched()
	for {
		q.mu.Lock()
		items := q.takeLocked()
		if items == nil {
			wake := q.wake
			if q.closed || wake == nil {
				q.running = false
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			<-wake
			continue
		}
		q.mu.Unlock()

		final, data := false, 0
		// The scratch (iovecs, doorbell) is held only while writing, so a
		// persistent writer waiting for work holds nothing but its stack.
		w := writerPool.Get().(*rawWriter)
		w.bufs = w.bufs[:0]
		for _, e := range *items {
			w.bufs = append(w.bufs, e.f.B)
			switch e.kind {
			case kindFinal:
				final = true
			case kindData:
				data++
			}
		}
		err := c.writeAll(w, time.Now().Add(c.srv.cfg.WriteTimeout))
		putWriter(w)
		for _, e := range *items {
			e.f.Release()
		}
		putEntries(items)
		if err != nil {
			c.srv.stats.WriteErrors.Add(1)
			c.srv.stats.LostClosed.Add(int64(data))
			c.teardown(err)
			return
		}
		c.srv.stats.Delivered.Add(int64(data))
		if final {
			c.finishWrite()
			return
		}
	}
}

// finishWrite runs after the final frame went out: it half-closes the socket
// so the peer sees our close, and leaves the read side waiting up to
// CloseTimeout for the peer's answer.
func (c *Conn) finishWrite() {
	c.deadline.Store(time.Now().Add(c.srv.cfg.CloseTimeout).UnixNano())
	if err := c.shutdownWrite(); err != nil {
		c.teardown(err)
	}
}

// putWriter clears a writer scratch and returns it to the pool.
func putWriter(w *rawWriter) {
	clear(w.bufs[:cap(w.bufs)])
	w.bufs = w.bufs[:0]
	w.iov = w.iov[:0]
	writerPool.Put(w)
}
