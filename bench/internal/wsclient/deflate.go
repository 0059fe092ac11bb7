package wsclient

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/gobwas/ws"
)

// permessage-deflate (RFC 7692) on the client side, for Dialer.Compression:
// the offer, the check of the server's answer, and inflating compressed
// messages. The clients only read compressed messages (their own frames,
// pongs and closes, are control frames, never compressed), and only from a
// server that keeps no compression context between messages
// (server_no_context_takeover), so no connection holds a flate reader or a
// window: each message is inflated on its own by a pooled inflater.

// deflateOffer is the Sec-WebSocket-Extensions value a Dialer with
// Compression sends: permessage-deflate, letting the server pick the
// client's window (the client never compresses, so any answer will do).
const deflateOffer = "permessage-deflate; client_max_window_bits"

// Negotiation errors.
var (
	// ErrCompressionDeclined: compression was asked for and the server's
	// 101 did not accept permessage-deflate.
	ErrCompressionDeclined = errors.New("wsclient: the server declined permessage-deflate")
	// ErrBadExtension: the server's Sec-WebSocket-Extensions is one the
	// client cannot honour (not offered, unknown, or with context
	// takeover on the server's side).
	ErrBadExtension = errors.New("wsclient: unacceptable Sec-WebSocket-Extensions")
	// ErrInflate: a compressed message did not inflate.
	ErrInflate = errors.New("wsclient: invalid compressed message")
)

// checkExtensions checks the Sec-WebSocket-Extensions values of a 101
// (each possibly a comma-separated list) against what was offered: with
// deflate, exactly one permessage-deflate with server_no_context_takeover
// and only parameters RFC 7692 defines; without, none at all.
func checkExtensions(values [][]byte, deflate bool) error {
	found := 0
	for _, v := range values {
		for ext := range bytes.SplitSeq(v, []byte(",")) {
			ext = bytes.TrimSpace(ext)
			if len(ext) == 0 {
				continue
			}
			name, params, _ := bytes.Cut(ext, []byte(";"))
			if !deflate || !bytes.Equal(bytes.TrimSpace(name), []byte("permessage-deflate")) {
				return fmt.Errorf("%w: %q was not offered", ErrBadExtension, ext)
			}
			if err := checkDeflateParams(params); err != nil {
				return err
			}
			found++
		}
	}
	switch {
	case deflate && found == 0:
		return ErrCompressionDeclined
	case found > 1:
		return fmt.Errorf("%w: permessage-deflate accepted %d times", ErrBadExtension, found)
	}
	return nil
}

// checkDeflateParams checks the parameters of an accepted
// permessage-deflate (what follows its first ';').
func checkDeflateParams(params []byte) error {
	noTakeover := false
	for p := range bytes.SplitSeq(params, []byte(";")) {
		k, v, hasV := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		k, v = bytes.TrimSpace(k), bytes.Trim(bytes.TrimSpace(v), `"`)
		switch string(k) {
		case "":
			continue
		case "server_no_context_takeover":
			noTakeover = !hasV
			if hasV {
				return fmt.Errorf("%w: server_no_context_takeover=%s", ErrBadExtension, v)
			}
		case "client_no_context_takeover":
			if hasV {
				return fmt.Errorf("%w: client_no_context_takeover=%s", ErrBadExtension, v)
			}
		case "server_max_window_bits", "client_max_window_bits":
			if n, err := strconv.Atoi(string(v)); err != nil || n < 8 || n > 15 {
				return fmt.Errorf("%w: %s=%q", ErrBadExtension, k, v)
			}
		default:
			return fmt.Errorf("%w: unknown parameter %q", ErrBadExtension, k)
		}
	}
	if !noTakeover {
		return fmt.Errorf("%w: no server_no_context_takeover (this client inflates each message on its own)", ErrBadExtension)
	}
	return nil
}

// deflateTail ends a compressed message for the flate reader: the empty
// stored block of a sync flush, which the sender strips (RFC 7692
// §7.2.1), then an empty final stored block, so that a whole message
// ends in a clean io.EOF.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// tailReader reads a message's compressed bytes, then deflateTail. It is
// an io.ByteReader, so the flate reader reads it without a bufio.Reader
// (and never past the final block).
type tailReader struct {
	p    []byte
	tail int // bytes of deflateTail read
}

func (r *tailReader) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		r.p = r.p[n:]
		return n, nil
	}
	if r.tail < len(deflateTail) {
		n := copy(b, deflateTail[r.tail:])
		r.tail += n
		return n, nil
	}
	return 0, io.EOF
}

func (r *tailReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// inflater is one pooled flate reader with its source and output buffer.
type inflater struct {
	fr  io.ReadCloser
	src tailReader
	out []byte
}

// keepInflated is the largest output buffer an inflater keeps in the pool.
const keepInflated = 1 << 20

var inflaters = sync.Pool{New: func() any {
	z := &inflater{out: make([]byte, 0, 8192)}
	z.fr = flate.NewReader(&z.src)
	return z
}}

// inflate decompresses the payload p (without its tail) of one message of
// op and calls fn with op and the result, which is valid only during the
// call. A
// message that inflates to more than limit bytes is ErrTooLarge; one that
// does not inflate, or ends before all of p was used, is ErrInflate.
func inflate(op ws.OpCode, p []byte, limit int, fn func(ws.OpCode, []byte) error) error {
	z := inflaters.Get().(*inflater)
	defer func() {
		if cap(z.out) > keepInflated {
			z.out = make([]byte, 0, 8192)
		}
		inflaters.Put(z)
	}()
	z.src = tailReader{p: p}
	if err := z.fr.(flate.Resetter).Reset(&z.src, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrInflate, err)
	}
	z.out = z.out[:0]
	for {
		if len(z.out) == cap(z.out) {
			z.out = append(z.out, 0)[:len(z.out)] // grow
		}
		n, err := z.fr.Read(z.out[len(z.out):cap(z.out)])
		z.out = z.out[:len(z.out)+n]
		switch {
		case len(z.out) > limit:
			return ErrTooLarge
		case err == io.EOF:
			// A final block before the tail is allowed (RFC 7692
			// §7.2.3.4); one before the end of the payload is not.
			if len(z.src.p) > 0 {
				return fmt.Errorf("%w: it ended before its last byte", ErrInflate)
			}
			return fn(op, z.out)
		case err != nil:
			return fmt.Errorf("%w: %v", ErrInflate, err)
		}
	}
}
