// Package wstest is a raw WebSocket client for tests: it can send any frame
// (unmasked, reserved bits, bad lengths, split anywhere) and reads the
// server's frames one by one. It is test tooling, not an API.
package wstest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wsframe"
)

// Client is one raw WebSocket client connection.
type Client struct {
	Conn net.Conn
	R    *bufio.Reader
	Resp *http.Response // the upgrade response
}

// Dial connects to addr and performs the upgrade for target (e.g.
// "/ws?topics=a"), with extra request header lines. A non-101 response is
// returned with an error wrapping ErrStatus, and the Client still set so its
// Resp can be inspected.
func Dial(addr, target string, header http.Header) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return Upgrade(nc, target, header)
}

// ErrStatus is wrapped by Dial when the response is not 101.
var ErrStatus = errors.New("wstest: upgrade refused")

// Upgrade performs the handshake on an established connection.
func Upgrade(nc net.Conn, target string, header http.Header) (*Client, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", target, nc.RemoteAddr())
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(b.Bytes()); err != nil {
		nc.Close()
		return nil, err
	}
	c := &Client{Conn: nc, R: bufio.NewReader(nc)}
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.Resp = resp
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		nc.Close()
		return c, fmt.Errorf("%w: %d %s", ErrStatus, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		nc.Close()
		return nil, fmt.Errorf("wstest: bad Sec-WebSocket-Accept %q", got)
	}
	return c, nil
}

// Close closes the socket.
func (c *Client) Close() error { return c.Conn.Close() }

// Frame is a frame to send. Zero values give a final, masked, rsv-clean
// frame.
type Frame struct {
	Op       ws.OpCode
	Payload  []byte
	NotFin   bool   // clear FIN
	Rsv      byte   // reserved bits (0-7)
	Unmasked bool   // send without a mask
	Len64    uint64 // if non-zero, the 64-bit length field as sent (lying is allowed)
}

// Encode returns the frame's wire bytes, masked with a fixed key.
func (f Frame) Encode() []byte {
	var b []byte
	b0 := byte(f.Op) | f.Rsv<<4
	if !f.NotFin {
		b0 |= 0x80
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	var mask *[4]byte
	if !f.Unmasked {
		mask = &key
	}
	if f.Len64 != 0 {
		// A 64-bit length field whatever the payload: the encoder would
		// choose the shortest, so this one is written by hand.
		b = append(b, b0, 127)
		if mask != nil {
			b[len(b)-1] |= 0x80
		}
		b = binary.BigEndian.AppendUint64(b, f.Len64)
		if mask != nil {
			b = append(b, key[:]...)
		}
	} else {
		b = wsframe.Append(b, b0, uint64(len(f.Payload)), mask)
	}
	p := append([]byte(nil), f.Payload...)
	if mask != nil {
		ws.Cipher(p, key, 0)
	}
	return append(b, p...)
}

// Write sends frames, in one write.
func (c *Client) Write(fs ...Frame) error {
	var b []byte
	for _, f := range fs {
		b = append(b, f.Encode()...)
	}
	_, err := c.Conn.Write(b)
	return err
}

// WriteText sends one masked text frame.
func (c *Client) WriteText(s string) error {
	return c.Write(Frame{Op: ws.OpText, Payload: []byte(s)})
}

// Read reads the next server frame within d.
func (c *Client) Read(d time.Duration) (ws.Header, []byte, error) {
	c.Conn.SetReadDeadline(time.Now().Add(d))
	defer c.Conn.SetReadDeadline(time.Time{})
	h, err := ws.ReadHeader(c.R)
	if err != nil {
		return h, nil, err
	}
	if h.Masked {
		return h, nil, errors.New("wstest: server frame is masked")
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.R, p); err != nil {
		return h, nil, err
	}
	return h, p, nil
}

// ReadText reads frames until a text frame, answering nothing; pings and
// pongs are skipped. A close frame is returned as a *CloseFrame error.
func (c *Client) ReadText(d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		h, p, err := c.Read(time.Until(deadline))
		if err != nil {
			return "", err
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			return string(p), nil
		case ws.OpClose:
			return "", closeFrame(p)
		}
	}
}

// CloseFrame is a close frame the server sent.
type CloseFrame struct {
	Code   ws.StatusCode // 0 when the payload was empty
	Reason string
}

// Error describes the close frame (it is returned as an error by ReadText).
func (e *CloseFrame) Error() string { return fmt.Sprintf("wstest: close %d %q", e.Code, e.Reason) }

func closeFrame(p []byte) *CloseFrame {
	if len(p) < 2 {
		return &CloseFrame{}
	}
	return &CloseFrame{Code: ws.StatusCode(binary.BigEndian.Uint16(p)), Reason: string(p[2:])}
}

// ExpectClose reads until a close frame and returns it; data frames before
// it are skipped.
func (c *Client) ExpectClose(d time.Duration) (*CloseFrame, error) {
	deadline := time.Now().Add(d)
	for {
		h, p, err := c.Read(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if h.OpCode == ws.OpClose {
			return closeFrame(p), nil
		}
	}
}

// CloseFramePayload builds a close payload with code and reason.
func CloseFramePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}
