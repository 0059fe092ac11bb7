package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

// errIncomplete means the request head has not fully arrived yet.
var errIncomplete = errors.New("incomplete request head")

// httpError is a rejected upgrade, answered with status and closed.
type httpError struct {
	status int
	msg    string
	header string // extra header lines, each ending in \r\n
}

func (e *httpError) Error() string { return strconv.Itoa(e.status) + " " + e.msg }

// response renders the HTTP reply for e.
func (e *httpError) response() []byte {
	reason := map[int]string{
		400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
		426: "Upgrade Required", 431: "Request Header Fields Too Large",
	}[e.status]
	body := e.msg + "\n"
	return []byte("HTTP/1.1 " + strconv.Itoa(e.status) + " " + reason + "\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Connection: close\r\n" + e.header + "\r\n" + body)
}

type upgradeRequest struct {
	key    string
	topics []string
}

// parseUpgrade parses a WebSocket upgrade request head from the start of
// b. It returns errIncomplete until "\r\n\r\n" has arrived, an *httpError
// for a bad request, or the request and the number of bytes of b it used
// (anything after that already belongs to the WebSocket stream).
func parseUpgrade(b []byte) (upgradeRequest, int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return upgradeRequest{}, 0, errIncomplete
	}
	bad := func(status int, msg string) (upgradeRequest, int, error) {
		return upgradeRequest{}, 0, &httpError{status: status, msg: msg}
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	method, rest, ok1 := strings.Cut(lines[0], " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" {
		return bad(400, "malformed request line (HTTP/1.1 required)")
	}
	if method != "GET" {
		return upgradeRequest{}, 0, &httpError{status: 405, msg: "method not allowed", header: "Allow: GET\r\n"}
	}
	path, query, _ := strings.Cut(target, "?")
	if path != "/ws" {
		return bad(404, "not found")
	}
	var upgrade, connection bool
	var key, version string
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return bad(400, "malformed header line")
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "upgrade":
			upgrade = upgrade || hasToken(value, "websocket")
		case "connection":
			connection = connection || hasToken(value, "upgrade")
		case "sec-websocket-key":
			key = value
		case "sec-websocket-version":
			version = value
		}
	}
	if !upgrade || !connection {
		return bad(400, "not a websocket upgrade")
	}
	if version != "13" {
		return upgradeRequest{}, 0, &httpError{status: 426, msg: "unsupported websocket version", header: "Sec-WebSocket-Version: 13\r\n"}
	}
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return bad(400, "bad Sec-WebSocket-Key")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return bad(400, "bad query")
	}
	topics, err := peerutil.ParseTopics(q.Get("topics"))
	if err != nil {
		return bad(400, err.Error())
	}
	return upgradeRequest{key: key, topics: topics}, end + 4, nil
}

// hasToken reports whether the comma-separated header value contains tok
// (case-insensitively).
func hasToken(value, tok string) bool {
	for _, t := range strings.Split(value, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// wsGUID is the RFC 6455 section 1.3 magic string. (The peer brief quoted
// "...-C5AB0DC11B0E"; that is not the RFC value and no client would accept
// the resulting key.)
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey is base64(sha1(key + GUID)).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// appendSwitching appends the 101 response for key.
func appendSwitching(dst []byte, key string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, acceptKey(key)...)
	return append(dst, "\r\n\r\n"...)
}
