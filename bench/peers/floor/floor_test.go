package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestAcceptKeyRFCExample(t *testing.T) {
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptKey = %q", got)
	}
}

func TestAppendFrame(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := appendFrame(nil, opText, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("n=%d: % x, want % x", tc.n, got, tc.want)
		}
	}
}

// maskedFrame builds a client frame of any length.
func maskedFrame(b0 byte, payload []byte) []byte {
	mask := [4]byte{1, 2, 3, 4}
	var f []byte
	switch n := len(payload); {
	case n <= 125:
		f = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		f = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		f = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i&3])
	}
	return f
}

func TestFrameParserChunks(t *testing.T) {
	var stream []byte
	for _, f := range [][]byte{
		maskedFrame(0x81, nil),
		maskedFrame(0x81, bytes.Repeat([]byte("t"), 300)),
		maskedFrame(0x89, []byte("abc")),
		maskedFrame(0x02, bytes.Repeat([]byte("x"), 70_000)), // fragment start, 64-bit length
		maskedFrame(0x8A, []byte("pong")),                    // control between fragments
		maskedFrame(0x80, []byte("end")),                     // final continuation
		maskedFrame(0x89, nil),
		maskedFrame(0x88, []byte{0x03, 0xE8, 'b', 'y', 'e'}),
	} {
		stream = append(stream, f...)
	}
	want := "9:abc|10:pong|9:|8:\x03\xe8bye"
	for _, chunk := range []int{1, 2, 3, 7, 64, 4096, len(stream)} {
		var f frameParser
		var got []string
		for rest := stream; len(rest) > 0; {
			piece := rest[:min(chunk, len(rest))]
			rest = rest[len(piece):]
			for len(piece) > 0 {
				n, op, payload, err := f.next(piece)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if n == 0 {
					t.Fatalf("chunk %d: no progress", chunk)
				}
				piece = piece[n:]
				if op != 0 {
					got = append(got, fmt.Sprintf("%d:%s", op, payload))
				}
			}
		}
		if g := strings.Join(got, "|"); g != want {
			t.Fatalf("chunk %d: got %q, want %q", chunk, g, want)
		}
	}
}

func TestFrameParserErrors(t *testing.T) {
	for name, frame := range map[string][]byte{
		"unmasked":         {0x81, 0x00},
		"rsv1":             maskedFrame(0xC1, nil),
		"reserved opcode":  maskedFrame(0x83, nil),
		"reserved control": maskedFrame(0x8B, nil),
		"fragmented ping":  maskedFrame(0x09, []byte("x")),
		"long ping":        maskedFrame(0x89, bytes.Repeat([]byte("p"), 126)),
		"64-bit high bit":  {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
	} {
		var f frameParser
		if _, _, _, err := f.next(frame); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

const goodHead = "GET /ws?topics=a,b%3Ac,a HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n" +
	"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n\r\n"

func TestParseUpgradePartial(t *testing.T) {
	for i := 0; i < len(goodHead); i++ {
		if _, _, err := parseUpgrade([]byte(goodHead[:i])); !errors.Is(err, errIncomplete) {
			t.Fatalf("prefix %d: %v, want incomplete", i, err)
		}
	}
	req, used, err := parseUpgrade([]byte(goodHead + "\x89\x80trailing"))
	if err != nil || used != len(goodHead) {
		t.Fatalf("full: used %d err %v", used, err)
	}
	if req.key != "dGhlIHNhbXBsZSBub25jZQ==" || strings.Join(req.topics, ",") != "a,b:c" {
		t.Fatalf("parsed %+v", req)
	}
}

func TestParseUpgradeErrors(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		status   int
	}{
		{"GET ", "POST ", 405},
		{"/ws?", "/wss?", 404},
		{"HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", 400},
		{"Version: 13", "Version: 8", 426},
		{"Upgrade: WebSocket", "Upgrade: h2c", 400},
		{"keep-alive, Upgrade", "keep-alive", 400},
		{"dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 400},
		{"topics=a,b%3Ac,a", "topics=a%20b", 400},
		{"topics=a,b%3Ac,a", "x=1", 400},
		{"Host: h", "Host h", 400},
	} {
		head := strings.Replace(goodHead, tc.from, tc.to, 1)
		_, _, err := parseUpgrade([]byte(head))
		var he *httpError
		if !errors.As(err, &he) || he.status != tc.status {
			t.Errorf("%q -> %q: %v, want status %d", tc.from, tc.to, err, tc.status)
			continue
		}
		if resp := string(he.response()); !strings.HasPrefix(resp, "HTTP/1.1 ") || !strings.Contains(resp, "Connection: close\r\n") {
			t.Errorf("response %q", resp)
		}
	}
}
