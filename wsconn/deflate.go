package wsconn

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wsframe"
)

// permessage-deflate (RFC 7692), with Config.Compression. Both directions
// run without context takeover, so no connection holds a compression
// context between messages: a delivery is compressed once per publish,
// into the second encoding of its shared frame (bpool.Frame.SetAlt), by
// the first Send to a connection that negotiated the extension; every such
// connection's writer writes that encoding, the others the plain one. A
// compressed client message is inflated into a pooled buffer, never beyond
// MaxMessage, and UTF-8 checked after.

// deflateParams is what the server asks for: no context takeover either
// way, the server's window at its maximum (a client asking for a smaller
// server window is declined: Go's flate always uses 32 KiB).
var deflateParams = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

// deflateTail is what a sync flush ends with; RFC 7692 §7.2.1 drops it
// from the frame and the receiver adds it back.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// negotiate is the upgrader's Negotiate callback. With compression on it
// accepts the first permessage-deflate offer it can honour; an offer it
// cannot parse is declined (RFC 7692 §5), never a reason to refuse the
// upgrade. Worker only, before Accept: the connection is subscribed to
// nothing yet and its writer cannot start, so w.deflate needs no lock.
func (st *upgrading) negotiate(opt httphead.Option) (httphead.Option, error) {
	if !st.c.srv.cfg.Compression {
		return httphead.Option{}, nil
	}
	accept, err := st.ext.Negotiate(opt)
	if err != nil {
		return httphead.Option{}, nil
	}
	if accept.Size() > 0 {
		st.c.w.deflate = true
	}
	return accept, nil
}

// deflater compresses one payload at a time; pooled, with its flate
// writer (which costs hundreds of KB to make) and its scratch buffer.
type deflater struct {
	fw  *flate.Writer
	out []byte // the compressed bytes of the payload being compressed
}

func (d *deflater) Write(p []byte) (int, error) {
	d.out = append(d.out, p...)
	return len(p), nil
}

var deflaters = sync.Pool{New: func() any {
	d := &deflater{out: make([]byte, 0, 4096)}
	d.fw, _ = flate.NewWriter(d, flate.DefaultCompression) // only fails for a bad level
	return d
}}

// prepareDeflate gives f its compressed encoding unless it has one (or
// was found not worth compressing): data frames of at least
// CompressionMinSize payload bytes, when the compressed frame is smaller.
// Called by Send for a connection that negotiated compression, so at most
// once per publish for all of them.
func (s *Server) prepareDeflate(f *bpool.Frame) {
	if _, ok := f.Alt(); ok {
		return
	}
	if z := deflateFrame(f.B, s.cfg.CompressionMinSize); !f.SetAlt(z) && z != bpool.NoAlt {
		bpool.Put(z)
	}
}

// deflateFrame returns b (one whole unmasked data frame) as a compressed
// frame in a pooled buffer, or bpool.NoAlt when b is anything else, its
// payload is shorter than minSize or compressing does not make it
// smaller.
func deflateFrame(b []byte, minSize int) *[]byte {
	h, hn, ok, err := parseHeader(b)
	if !ok || err != nil || !h.Fin || h.Rsv != 0 || h.Masked || (h.OpCode != ws.OpText && h.OpCode != ws.OpBinary) ||
		int64(len(b)-hn) != h.Length || int(h.Length) < minSize {
		return bpool.NoAlt
	}
	d := deflaters.Get().(*deflater)
	defer deflaters.Put(d)
	d.out = d.out[:0]
	d.fw.Reset(d)
	d.fw.Write(b[hn:]) // writes to d never fail
	d.fw.Flush()
	z := bytes.TrimSuffix(d.out, deflateTail)
	if len(z)+ws.MaxHeaderSize >= len(b) {
		return bpool.NoAlt
	}
	out := bpool.Get(ws.MaxHeaderSize + len(z))
	*out = wsframe.Append(*out, 0x80|0x40|byte(h.OpCode), uint64(len(z)), nil) // FIN, RSV1
	*out = append(*out, z...)
	return out
}

// Errors of inflating a client message.
var (
	errInflateTooBig = errors.New("inflated message over the size limit")
	errInflateBad    = errors.New("invalid compressed data")
)

// inflaters pools the flate readers that decompress client messages.
var inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// inflate decompresses a client message's payload p into a pooled buffer
// of at most limit bytes (the caller puts it back).
func inflate(p []byte, limit int) (*[]byte, error) {
	var src bytes.Reader
	src.Reset(p)
	tail := bytes.NewReader(deflateTail)
	fr := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(fr)
	fr.(flate.Resetter).Reset(io.MultiReader(&src, tail), nil)
	out := bpool.Get(min(max(2*len(p), 512), limit+1))
	for {
		if len(*out) == cap(*out) {
			if len(*out) > limit {
				bpool.Put(out)
				return nil, errInflateTooBig
			}
			out = bpool.Grow(out, min(cap(*out), limit+1-len(*out)))
		}
		n, err := fr.Read((*out)[len(*out):cap(*out)])
		*out = (*out)[:len(*out)+n]
		switch {
		case len(*out) > limit:
			bpool.Put(out)
			return nil, errInflateTooBig
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) && src.Len() == 0 && tail.Len() == 0:
			return out, nil
		case err != nil:
			bpool.Put(out)
			return nil, errInflateBad
		}
	}
}
