package wsconn

import "github.com/wspush/wspush/internal/latency"

// The writer goroutine and the end of every written batch: what drains a
// connection's out queue (writer.go) into its socket when a flusher
// (flush.go) could not.

// socket is what the writer goroutine drains into: the connection.
type socket interface {
	// writeBatch writes rw.rest (see rawio.go); without wait it returns
	// errWouldBlock, with rw.rest what is left, when the socket is full.
	writeBatch(rw *rawWriter, wait bool) error
	// wroteFinal runs once the final frame is out.
	wroteFinal()
	// writeFailed ends the connection after a write error or timeout.
	writeFailed(err error)
}

// run is a writer goroutine, the socket's only writer while it runs. It
// takes everything queued, writes it with one writev where the socket
// allows (waiting for it when full), and repeats. On-demand it exits when
// the queue is empty; persistent it waits on the doorbell. It exits after
// the final frame or a write error, and always releases every frame it
// took. items and rw, when not nil, are a batch a flusher began and could
// not finish (the socket filled up): run inherits it with the write side.
func (w *writer) run(s socket, items *[]entry, rw *rawWriter) {
	defer w.pol.stats.Writers.Add(-1)
	w.loop(s, items, rw)
}

// loop writes batches until the queue is empty (on-demand), the final frame
// is out or a write fails. items and rw, when not nil, are a batch begun
// elsewhere.
func (w *writer) loop(s socket, items *[]entry, rw *rawWriter) {
	for {
		if items == nil {
			var wake chan struct{}
			items, wake = w.take()
			if items == nil {
				if wake == nil {
					return
				}
				<-wake
				continue
			}
			// The scratch (iovecs, doorbell) is held only while writing,
			// so a persistent writer waiting for work holds nothing but
			// its stack.
			rw = fillWriter(items, w.deflate)
		}
		err := s.writeBatch(rw, true)
		if !w.finish(s, items, rw, err) {
			return
		}
		items, rw = nil, nil
	}
}

// fillWriter takes a pooled scratch listing the bytes of items: with
// deflate, a data frame's compressed encoding when it has one.
func fillWriter(items *[]entry, deflate bool) *rawWriter {
	rw := writerPool.Get().(*rawWriter)
	for _, e := range *items {
		b := e.f.B
		if deflate && e.kind == kindData {
			if z, _ := e.f.Alt(); len(z) > 0 {
				b = z
				rw.zipped++
			}
		}
		rw.bufs = append(rw.bufs, b)
	}
	rw.rest = rw.bufs
	return rw
}

// finish ends a written batch (err is the write's outcome): the scratch goes
// back, sampled publications are marked written, the frames are released
// and counted. It reports whether the write side goes on: false after the
// final frame or an error.
func (w *writer) finish(s socket, items *[]entry, rw *rawWriter, err error) bool {
	st := w.pol.stats
	zipped := rw.zipped
	putWriter(rw)
	final, data, probed := false, 0, false
	for _, e := range *items {
		probed = probed || e.f.Probe != nil
		switch e.kind {
		case kindFinal:
			final = true
		case kindData:
			data++
		}
	}
	if probed && err == nil {
		writtenProbes(*items)
	}
	for _, e := range *items {
		e.f.Release()
	}
	putEntries(items)
	if err != nil {
		st.WriteErrors.Add(1)
		st.LostClosed.Add(int64(data))
		s.writeFailed(err)
		return false
	}
	st.Delivered.Add(int64(data))
	if zipped > 0 {
		st.DeliveredCompressed.Add(int64(zipped))
	}
	if final {
		s.wroteFinal()
		return false
	}
	return true
}

// writtenProbes tells the probes of sampled publications in a written
// batch that they reached this socket now (before their frames are
// released: the last release ends a probe).
func writtenProbes(items []entry) {
	now := latency.Now()
	for _, e := range items {
		if e.f.Probe != nil {
			e.f.Probe.Written(now)
		}
	}
}
