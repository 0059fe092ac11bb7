package wsclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxResponse bounds the upgrade response header.
const maxResponse = 8 << 10

// wsGUID is RFC 6455's magic string for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// StatusError is an upgrade answered with something other than 101.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("wsclient: upgrade refused with HTTP %d", e.Code)
}

// ErrBadAccept is a 101 whose Sec-WebSocket-Accept does not match the key.
var ErrBadAccept = errors.New("wsclient: bad Sec-WebSocket-Accept")

// ErrBadResponse is an upgrade response that is not valid HTTP.
var ErrBadResponse = errors.New("wsclient: malformed upgrade response")

// Dialer opens client connections from one source address.
type Dialer struct {
	// Addr is the server's host:port.
	Addr string
	// Target is the request target, e.g. "/ws?topics=a".
	Target string
	// Source is the local IP to bind (nil: chosen by the kernel).
	Source net.IP
	// Timeout bounds the dial and the handshake together.
	Timeout time.Duration
	// Compression offers permessage-deflate (deflateOffer); a server
	// that does not accept it, with server_no_context_takeover, fails the
	// dial (ErrCompressionDeclined, ErrBadExtension).
	Compression bool
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT so that binding a source address
// leaves the port choice to connect(), which may then reuse a port towards
// a different destination: many more connections per source address.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// Dial connects and upgrades. It returns the connection (deadlines
// cleared) and any bytes read past the 101 response, which belong to the
// frame stream. The target may be overridden per call (empty: d.Target).
func (d *Dialer) Dial(ctx context.Context, target string) (*net.TCPConn, []byte, error) {
	if target == "" {
		target = d.Target
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// No TCP keepalive: the server's WebSocket pings are the keepalive.
	// Go's default (a probe every 15 s per idle socket) costs the kernel
	// 67,000 probes a second at a million clients on one box, and probes
	// left unanswered while it is loaded end connections with ETIMEDOUT.
	nd := net.Dialer{Timeout: timeout, KeepAlive: -1}
	if d.Source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.Source}
		nd.Control = bindNoPort
	}
	deadline := time.Now().Add(timeout)
	nc, err := nd.DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		return nil, nil, err
	}
	tc := nc.(*net.TCPConn)
	rest, err := Handshake(tc, d.Addr, target, deadline, d.Compression)
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	return tc, rest, nil
}

// Handshake writes the upgrade request on nc and reads the response until
// deadline. It returns the bytes that followed the response header. With
// deflate it offers permessage-deflate and fails unless the server
// accepted it (see Dialer.Compression); without, a response that names
// any extension fails.
func Handshake(nc net.Conn, host, target string, deadline time.Time, deflate bool) ([]byte, error) {
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := make([]byte, 0, 256)
	req = append(req, "GET "...)
	req = append(req, target...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	req = append(req, key...)
	req = append(req, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if deflate {
		req = append(req, "Sec-WebSocket-Extensions: "+deflateOffer+"\r\n"...)
	}
	req = append(req, "\r\n"...)
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := nc.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 512)
	end := -1
	for end < 0 {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxResponse {
				return nil, fmt.Errorf("%w: header over %d bytes", ErrBadResponse, maxResponse)
			}
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		end = bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	head, rest := buf[:end+2], buf[end+4:]
	if err := checkResponse(head, key, deflate); err != nil {
		return nil, err
	}
	if len(rest) == 0 {
		return nil, nil
	}
	return append([]byte(nil), rest...), nil
}

// checkResponse verifies a 101 with the right accept key and the
// extensions asked for (checkExtensions). head holds the status line and
// header lines, each ending in CRLF.
func checkResponse(head []byte, key string, deflate bool) error {
	line, hdrs, _ := bytes.Cut(head, []byte("\r\n"))
	parts := bytes.SplitN(line, []byte(" "), 3)
	if len(parts) < 2 || !bytes.HasPrefix(parts[0], []byte("HTTP/1.")) {
		return fmt.Errorf("%w: status line %q", ErrBadResponse, line)
	}
	code, err := strconv.Atoi(string(parts[1]))
	if err != nil {
		return fmt.Errorf("%w: status line %q", ErrBadResponse, line)
	}
	if code != 101 {
		return &StatusError{Code: code}
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	want := base64.StdEncoding.EncodeToString(sum[:])
	accepted := false
	var exts [][]byte
	for len(hdrs) > 0 {
		var l []byte
		l, hdrs, _ = bytes.Cut(hdrs, []byte("\r\n"))
		name, val, ok := bytes.Cut(l, []byte(":"))
		name, val = bytes.TrimSpace(name), bytes.TrimSpace(val)
		switch {
		case !ok:
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			if accepted || string(val) != want {
				return ErrBadAccept
			}
			accepted = true
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Extensions")):
			exts = append(exts, val)
		}
	}
	if !accepted {
		return ErrBadAccept
	}
	return checkExtensions(exts, deflate)
}

// Classify names the cause of a dial, handshake or connection error for the
// failure tables: refused, reset, timeout, addr_not_avail, too_many_files,
// eof, http_<code>, bad_accept, bad_response, compression_declined,
// bad_extension, protocol, closed, other.
func Classify(err error) string {
	var se *StatusError
	var ne net.Error
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.Code)
	case errors.Is(err, ErrBadAccept):
		return "bad_accept"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrCompressionDeclined):
		return "compression_declined"
	case errors.Is(err, ErrBadExtension):
		return "bad_extension"
	case errors.Is(err, ErrMaskedServerFrame), errors.Is(err, ErrProtocol), errors.Is(err, ErrTooLarge), errors.Is(err, ErrInflate):
		return "protocol"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "addr_not_avail"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
		return "closed"
	}
	return "other"
}
