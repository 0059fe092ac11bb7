package wsconn

import (
	"errors"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/bpool"
)

const (
	// readChunk is the buffer offered to a read when no frame is pending.
	readChunk = 4096
	// readsPerServe bounds the reads of one Serve so that a busy client
	// cannot hold a worker; the level-triggered re-arm brings it back.
	readsPerServe = 4
)

// serveFrames reads what the socket has and handles every complete frame.
// After the connection was failed (a protocol error), the rest of the input
// is discarded unparsed: RFC 6455 §7.1.7. Worker only.
func (c *Conn) serveFrames() {
	if c.failed {
		c.discardInput()
		return
	}
	defer func() {
		if c.rbuf != nil && len(*c.rbuf) == 0 {
			bpool.Put(c.rbuf)
			c.rbuf = nil
		}
	}()
	for range readsPerServe {
		bp := bpool.Grow(c.rbuf, c.readSpace())
		c.rbuf = bp
		before := len(*bp)
		_, err := c.readInto(bp)
		if len(*bp) > before {
			c.lastSeen.Store(time.Now().UnixNano())
			used := c.parseFrames(*bp)
			rest := copy(*bp, (*bp)[used:])
			*bp = (*bp)[:rest]
			c.trackMessage(rest > 0 || c.msg != nil)
		}
		if c.ending.Load() != nil {
			return
		}
		switch {
		case err == nil:
			if len(*bp) < cap(*bp) {
				return // drained what was there
			}
		case errors.Is(err, unix.EAGAIN):
			return
		default:
			c.end(err)
			return
		}
	}
}

// trackMessage keeps the read timeout of the message in progress: set when
// its first bytes are buffered (a partial frame, or a fragmented message
// under reassembly), cleared when none is. Later bytes of the same message
// do not extend it. Worker only; a close's deadline always wins (see
// Conn.deadline).
func (c *Conn) trackMessage(pending bool) {
	rt := c.srv.cfg.ReadTimeout
	if rt <= 0 || c.state.Load() != stateOpen {
		return
	}
	old := c.deadline.Load()
	if old < 0 || pending == (old != 0) {
		return // a close is starting, or nothing to change
	}
	var d int64
	if pending {
		d = time.Now().Add(rt).UnixNano()
	}
	c.deadline.CompareAndSwap(old, d)
}

// readSpace is how many bytes the next read should have room for: the rest
// of a frame whose header is buffered, or a standard chunk.
func (c *Conn) readSpace() int {
	if c.rbuf == nil || len(*c.rbuf) == 0 {
		return readChunk
	}
	h, n, ok, err := parseHeader(*c.rbuf)
	if !ok || err != nil {
		return readChunk
	}
	want := n + int(h.Length) - len(*c.rbuf)
	return max(want, 512)
}

// parseFrames handles the complete frames at the start of b and returns how
// many bytes they took. An incomplete frame is left for the next read.
// Worker only.
func (c *Conn) parseFrames(b []byte) int {
	off := 0
	for off < len(b) {
		if c.ending.Load() != nil {
			return len(b)
		}
		h, hn, ok, err := parseHeader(b[off:])
		if err != nil {
			c.fail(ws.StatusProtocolError, "bad frame length")
			return len(b)
		}
		if !ok {
			break
		}
		state := ws.StateServerSide
		if c.msgOp != 0 {
			state = state.Set(ws.StateFragmented)
		}
		compressed := false
		if c.w.deflate && h.Rsv&rsv1 != 0 {
			// RFC 7692 §6: RSV1 marks a compressed message, on its first
			// frame only.
			if h.OpCode.IsControl() || h.OpCode == ws.OpContinuation {
				c.fail(ws.StatusProtocolError, wsflate.ErrUnexpectedCompressionBit.Error())
				return len(b)
			}
			h.Rsv &^= rsv1
			compressed = true
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.fail(ws.StatusProtocolError, err.Error())
			return len(b)
		}
		size := h.Length
		if h.OpCode == ws.OpContinuation && c.msg != nil {
			size += int64(len(*c.msg))
		}
		if !h.OpCode.IsControl() && size > int64(c.srv.cfg.MaxMessage) {
			c.fail(ws.StatusMessageTooBig, "message too big")
			return len(b)
		}
		total := hn + int(h.Length)
		if len(b)-off < total {
			break
		}
		payload := b[off+hn : off+total]
		ws.Cipher(payload, h.Mask, 0)
		off += total
		if !c.handleFrame(h, payload, compressed) {
			return len(b)
		}
	}
	return off
}

// discardInput reads and drops what a refused client still sends, until EOF
// or the close timeout, so that the refusal is not lost to a reset. Worker
// only.
func (c *Conn) discardInput() {
	bpool.Put(c.rbuf)
	c.rbuf = nil
	bp := bpool.Get(readChunk)
	defer bpool.Put(bp)
	for range readsPerServe {
		*bp = (*bp)[:0]
		if _, err := c.readInto(bp); err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				c.end(err)
			}
			return
		}
	}
}

// fail closes the connection for a protocol violation. When a close frame was
// already sent, the connection is simply dropped.
func (c *Conn) fail(code ws.StatusCode, reason string) {
	c.failed = true
	bpool.Put(c.msg)
	c.msg, c.msgOp, c.msgDeflate = nil, 0, false
	if c.state.Load() == stateClosing {
		c.end(&CloseError{Code: code, Reason: reason})
		return
	}
	c.CloseWith(code, reason)
}

// handleFrame acts on one complete, unmasked frame; compressed says RSV1
// was set on it (the first frame of a compressed message). It reports
// false when the rest of the input must be discarded: the connection
// failed or is ending. A close we started (the handler's, the sweeper's)
// is not a reason: the frames after it are still parsed, in sync, to find
// the peer's close. Worker only.
func (c *Conn) handleFrame(h ws.Header, p []byte, compressed bool) bool {
	closing := c.state.Load() != stateOpen
	if h.OpCode.IsControl() {
		return c.handleControl(h.OpCode, p, closing)
	}
	if closing {
		return true // data after a close is ignored
	}
	switch {
	case h.OpCode == ws.OpContinuation:
		*c.msg = append(*c.msg, p...)
		if !h.Fin {
			return true
		}
		op, m, z := c.msgOp, c.msg, c.msgDeflate
		c.msg, c.msgOp, c.msgDeflate = nil, 0, false
		ok := c.handleMessage(op, *m, z)
		bpool.Put(m)
		return ok
	case h.Fin:
		return c.handleMessage(h.OpCode, p, compressed)
	default:
		c.msgOp, c.msgDeflate = h.OpCode, compressed
		c.msg = bpool.Get(max(len(p)*2, 256))
		*c.msg = append(*c.msg, p...)
		return true
	}
}

// handleMessage hands a complete incoming message to the handler, inflated
// first when compressed (never beyond MaxMessage: 1009), after the UTF-8
// check. It reports false when the rest of the input must be discarded
// (see handleFrame).
func (c *Conn) handleMessage(op ws.OpCode, p []byte, compressed bool) bool {
	if compressed {
		out, err := inflate(p, c.srv.cfg.MaxMessage)
		switch {
		case errors.Is(err, errInflateTooBig):
			c.fail(ws.StatusMessageTooBig, "message too big")
			return false
		case err != nil:
			c.fail(ws.StatusInvalidFramePayloadData, err.Error())
			return false
		}
		defer bpool.Put(out)
		p = *out
	}
	if op == ws.OpText && !utf8.Valid(p) {
		c.fail(ws.StatusInvalidFramePayloadData, "invalid utf-8")
		return false
	}
	c.srv.handler.OnMessage(c, op, p)
	return !c.failed && c.ending.Load() == nil
}

// rsv1 is RSV1 in ws.Header.Rsv: the permessage-deflate bit.
const rsv1 = 0x4

// handleControl answers ping with pong and the close handshake. Worker only.
func (c *Conn) handleControl(op ws.OpCode, p []byte, closing bool) bool {
	switch op {
	case ws.OpPing:
		if !closing {
			c.sendControl(newControlFrame(ws.OpPong, p))
		}
	case ws.OpPong:
		// lastSeen already moved: that is all a pong is for.
		c.srv.stats.Pongs.Add(1)
	case ws.OpClose:
		code, reason, failCode := parseClose(p)
		c.srv.stats.closeRecv[closeSlot(code)].Add(1)
		if failCode != 0 {
			c.fail(failCode, "invalid close frame")
			return false
		}
		if closing {
			// Our close was answered: the handshake is complete.
			c.end(&CloseError{Code: code, Reason: reason, Remote: false})
			return false
		}
		c.closeWith(&CloseError{Code: code, Reason: reason, Remote: true}, false)
		return false
	}
	return true
}
