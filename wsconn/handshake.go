package wsconn

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/bpool"
)

// Request is what the Handler sees of an upgrade request. Its fields are
// copies, valid after Accept returns.
type Request struct {
	URI           string // request target, e.g. "/ws?topics=a,b"
	Host          string // Host header
	Origin        string // Origin header; empty when absent
	Authorization string // Authorization header; empty when absent
	// ForwardedFor is the X-Forwarded-For header, several header lines
	// joined by ", " in order; empty when absent. It is only as true as the
	// peer that sent it: see server.Config.TrustedProxies.
	ForwardedFor string
}

var (
	headerEnd        = []byte("\r\n\r\n")
	hdrOrigin        = []byte("Origin")
	hdrAuthorization = []byte("Authorization")
	hdrForwardedFor  = []byte("X-Forwarded-For")
)

// serveHandshake accumulates the upgrade request as it becomes readable and
// upgrades once it is complete. A slow client holds only its buffer, never
// the worker. Worker only.
func (c *Conn) serveHandshake() {
	bp := bpool.Grow(c.rbuf, 1024)
	c.rbuf = bp
	_, err := c.readInto(bp)
	data := *bp
	if c.proxyPending {
		var ok bool
		if data, ok = c.takeProxyHeader(bp, err); !ok {
			return
		}
	}
	end := bytes.Index(data, headerEnd)
	if end < 0 {
		switch {
		case len(data) >= c.srv.cfg.MaxHandshake:
			c.refuse(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
		case err != nil && !errors.Is(err, unix.EAGAIN):
			c.srv.stats.HandshakeAborted.Add(1)
			c.end(err)
		}
		return
	}
	if end+len(headerEnd) > c.srv.cfg.MaxHandshake {
		c.refuse(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
		return
	}
	if c.serveStatic(data[:end+len(headerEnd)]) {
		return
	}
	c.upgrade(data[:end+len(headerEnd)])
	// Bytes after the request are the client's first frames.
	rest := copy(data, data[end+len(headerEnd):])
	*bp = data[:rest]
	if rest > 0 && c.state.Load() == stateOpen {
		c.lastSeen.Store(time.Now().UnixNano())
		used := c.parseFrames(*bp)
		n := copy(*bp, (*bp)[used:])
		*bp = (*bp)[:n]
		c.trackMessage(n > 0 || c.msg != nil)
	}
	if len(*bp) == 0 {
		bpool.Put(bp)
		c.rbuf = nil
	}
}

// takeProxyHeader consumes the PROXY protocol header at the start of *bp
// and adopts the client address it names. It returns the bytes after it and
// true, or false when the header is still incomplete or the connection was
// refused or torn down (err is the read's error). Worker only.
func (c *Conn) takeProxyHeader(bp *[]byte, err error) ([]byte, bool) {
	data := *bp
	n, perr := proxyHeaderLen(data)
	switch {
	case perr != nil:
		c.refuse(http.StatusBadRequest, "bad PROXY protocol header: "+perr.Error())
		return nil, false
	case n > c.srv.cfg.MaxHandshake:
		c.refuse(http.StatusRequestHeaderFieldsTooLarge, "PROXY protocol header too large")
		return nil, false
	case n == 0 || n > len(data):
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			c.srv.stats.HandshakeAborted.Add(1)
			c.end(err)
		}
		return nil, false
	}
	src, perr := parseProxyHeader(data[:n])
	if perr != nil {
		c.refuse(http.StatusBadRequest, "bad PROXY protocol header")
		return nil, false
	}
	if src.IsValid() {
		c.remote = packAddr(src)
	}
	c.proxyPending = false
	data = data[:copy(data, data[n:])]
	*bp = data
	return data, true
}

// handshakeIO feeds a complete request to ws.Upgrader and collects the
// response into a frame the writer will send.
type handshakeIO struct {
	r bytes.Reader
	f *bpool.Frame
}

func (h *handshakeIO) Read(p []byte) (int, error) { return h.r.Read(p) }

func (h *handshakeIO) Write(p []byte) (int, error) {
	h.f.B = append(h.f.B, p...)
	return len(p), nil
}

// upgrading is the state of one upgrade on a worker: the request as the
// upgrader parses it and the ws.Upgrader whose callbacks fill it in. Pooled,
// with the callbacks made once per pooled value (closures over it), so an
// upgrade allocates neither.
type upgrading struct {
	c        *Conn
	r        Request
	accepted bool
	io       handshakeIO
	u        ws.Upgrader
	ext      wsflate.Extension // permessage-deflate's negotiation (deflate.go)
}

var upgradingPool = sync.Pool{New: func() any { return newUpgrading() }}

func newUpgrading() *upgrading {
	st := &upgrading{}
	st.u = ws.Upgrader{
		WriteBufferSize: 512,
		OnRequest: func(uri []byte) error {
			st.r.URI = string(uri)
			return nil
		},
		OnHost: func(host []byte) error {
			st.r.Host = string(host)
			return nil
		},
		OnHeader: func(key, value []byte) error {
			st.header(key, value)
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			return nil, st.decide()
		},
		Negotiate: st.negotiate,
	}
	st.ext.Parameters = deflateParams
	return st
}

// header keeps the request headers Request names.
func (st *upgrading) header(key, value []byte) {
	switch {
	case bytes.EqualFold(key, hdrOrigin):
		st.r.Origin = string(value)
	case bytes.EqualFold(key, hdrAuthorization):
		st.r.Authorization = string(value)
	case bytes.EqualFold(key, hdrForwardedFor):
		if st.r.ForwardedFor != "" {
			st.r.ForwardedFor += ", "
		}
		st.r.ForwardedFor += string(value)
	}
}

// decide admits the connection and asks the Handler, once the request is
// complete and valid.
func (st *upgrading) decide() error {
	c := st.c
	if err := c.srv.admit(c); err != nil {
		return rejection(err)
	}
	if err := c.srv.handler.Accept(c, &st.r); err != nil {
		c.srv.unadmit(c)
		return rejection(err)
	}
	st.accepted = true
	return nil
}

// upgrade runs the gobwas/ws zero-copy upgrader on the buffered request. The
// Handler's Accept runs before the 101 is queued, so whatever it sets up
// (subscriptions) is in place before the client can see the response.
func (c *Conn) upgrade(req []byte) {
	st := upgradingPool.Get().(*upgrading)
	st.c = c
	st.u.ReadBufferSize = c.srv.cfg.MaxHandshake
	hio := &st.io
	hio.f = bpool.NewFrame(256)
	hio.r.Reset(req)
	_, err := st.u.Upgrade(hio)
	f, accepted := hio.f, st.accepted // f: the response gobwas/ws wrote
	*st = upgrading{u: st.u, ext: wsflate.Extension{Parameters: deflateParams}}
	upgradingPool.Put(st)
	if err != nil {
		status := http.StatusBadRequest
		var rej *ws.ConnectionRejectedError
		if errors.As(err, &rej) && rej.StatusCode() != 0 {
			status = rej.StatusCode()
		}
		c.srv.stats.HandshakeFailed.Add(1)
		c.srv.handler.OnRefused(c, status, err.Error())
		if accepted {
			// Accept set things up; OnClose undoes them.
			c.end(err)
			f.Release()
			return
		}
		if len(f.B) == 0 {
			// gobwas/ws writes nothing for an unreadable request line.
			f.B = appendHTTPError(f.B, status, "malformed upgrade request")
		}
		c.sendRefusal(f)
		return
	}
	// Ended while Accept ran (handshake timeout, shutdown): no 101; the
	// teardown that follows on this worker calls OnClose, which undoes
	// what Accept set up.
	//
	// The handshake deadline ends first: while open, deadline is the read
	// timeout of a pending message, 0 for none, and the sweeper skips a
	// handshaking connection whose deadline is 0 (being upgraded now).
	// Zeroed after the state change, a sweeper that read "handshake" just
	// before it would take 0 for an expired deadline.
	c.deadline.Store(0)
	if c.ending.Load() != nil || !c.state.CompareAndSwap(stateHandshake, stateOpen) {
		f.Release()
		return
	}
	c.opened = true
	c.srv.stats.Upgraded.Add(1)
	if c.w.open(f, false) {
		c.writeResponse()
	}
}

// writeResponse writes the 101 response, and whatever was queued behind
// it, from the worker that holds the write side's claim after the upgrade:
// one non-blocking write, as a flusher would make it, which saves waking a
// flusher for every new connection. A socket that cannot take it all gets a
// writer goroutine that waits on the poller, so the socket is watched
// first. Worker only; the persistent writer's goroutine writes instead.
func (c *Conn) writeResponse() {
	if c.srv.qpol.persistent {
		c.handOff(true)
		return
	}
	c.arm()
	if c.flushOnce() {
		c.srv.list(c, true)
	}
}

// refuse answers the upgrade request with an HTTP error and closes.
func (c *Conn) refuse(status int, reason string) {
	c.srv.stats.HandshakeFailed.Add(1)
	c.srv.handler.OnRefused(c, status, reason)
	f := bpool.NewFrame(128 + len(reason))
	f.B = appendHTTPError(f.B, status, reason)
	c.sendRefusal(f)
}

// sendRefusal queues an HTTP error response as the connection's final bytes.
func (c *Conn) sendRefusal(f *bpool.Frame) {
	c.setCloseDeadline(c.srv.cfg.WriteTimeout + c.srv.cfg.CloseTimeout)
	c.state.CompareAndSwap(stateHandshake, stateClosing)
	if c.w.open(f, true) {
		c.handOff(true)
	}
}

// serveStatic answers a plain GET for one of the handler's static files
// (StaticHandler) with the file, as the connection's final bytes: it
// reports whether it did. Anything else goes on to the upgrade. It
// allocates nothing for a request it does not serve.
func (c *Conn) serveStatic(req []byte) bool {
	sh, ok := c.srv.handler.(StaticHandler)
	if !ok {
		return false
	}
	path, ok := getPath(req)
	if !ok {
		return false
	}
	ctype, body, ok := sh.Static(path)
	if !ok || hasUpgrade(req) {
		return false
	}
	f := bpool.NewFrame(256 + len(body))
	f.B = appendHTTPFile(f.B, ctype, body)
	c.sendRefusal(f)
	return true
}

// getPath is the path of a "GET /path[?query] HTTP/1.x" request line.
func getPath(req []byte) ([]byte, bool) {
	line, _, _ := bytes.Cut(req, []byte("\r\n"))
	rest, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok || !bytes.HasPrefix(rest, []byte("/")) {
		return nil, false
	}
	target, _, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return nil, false
	}
	target, _, _ = bytes.Cut(target, []byte("?"))
	return target, true
}

// hasUpgrade reports whether the request has an Upgrade header (a
// WebSocket handshake is never a static GET).
func hasUpgrade(req []byte) bool {
	for _, line := range bytes.Split(req, []byte("\r\n")) {
		if len(line) >= 8 && bytes.EqualFold(line[:8], []byte("upgrade:")) {
			return true
		}
	}
	return false
}

// appendHTTPFile is a 200 response carrying body, cacheable for five
// minutes and loadable from any origin (a module script is fetched with
// CORS), after which the connection closes.
func appendHTTPFile(dst []byte, ctype string, body []byte) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: "...)
	dst = append(dst, ctype...)
	dst = append(dst, "\r\nCache-Control: public, max-age=300\r\nAccess-Control-Allow-Origin: *\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: "...)
	dst = append(dst, strconv.Itoa(len(body))...)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

func appendHTTPError(dst []byte, status int, reason string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, strconv.Itoa(status)...)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	dst = append(dst, strconv.Itoa(len(reason))...)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, reason...)
}

// rejection turns a Handler error into the upgrader's refusal.
func rejection(err error) error {
	var he *HTTPError
	if errors.As(err, &he) {
		return ws.RejectConnectionError(ws.RejectionStatus(he.Status), ws.RejectionReason(he.Reason))
	}
	return ws.RejectConnectionError(ws.RejectionStatus(http.StatusInternalServerError), ws.RejectionReason("internal error"))
}

var _ io.ReadWriter = (*handshakeIO)(nil)
