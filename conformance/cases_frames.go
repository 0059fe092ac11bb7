package conformance

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/gobwas/ws"
)

// framing is section 1: text and binary messages of every length class
// (7-bit, 16-bit, 64-bit length), written whole, in chunks and byte by byte.
func (t *table) framing() {
	lens := []int{0, 125, 126, 127, 128, 65535, 65536}
	for gi, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		name, message, outcome := "text", t.message, t.outcome
		if op == ws.OpBinary {
			name, message, outcome = "binary", t.binaryMessage, t.binaryOutcome
		}
		t.group("1."+strconv.Itoa(gi+1), "§5.2")
		for _, n := range lens {
			p, ev := message(1, n)
			t.add(fmt.Sprintf("%s message of %d bytes %s", name, n, outcome(n)),
				send(frames(frame(op, p)), ev))
		}
		p, ev := message(1, 65536)
		t.add(fmt.Sprintf("%s message of 65536 bytes written in 997-byte chunks %s", name, outcome(65536)),
			Step{Frames: frames(frame(op, p)), Chunk: 997, Expect: []Event{ev}})
		p, ev = message(1, 128)
		t.add(fmt.Sprintf("%s message of 128 bytes written byte by byte %s", name, outcome(128)),
			Step{Frames: frames(frame(op, p)), Chunk: 1, Expect: []Event{ev}})
	}

	t.group("1.3", "§5.2")
	t.add("three messages (text, binary, text) in one write → ack, then 1003 for the binary one",
		send(frames(text(command(1)), frame(ws.OpBinary, command(2)), text(command(3))), Ack(1), Close(1003)))
	t.addSec("§5.1", "unmasked text frame → 1002",
		send(frames(F{Op: ws.OpText, Payload: command(1), Unmasked: true}), Close(1002)))
	t.addSec("§5.1", "unmasked ping after a valid message → ack, 1002, no pong",
		failAfter(frames(F{Op: ws.OpPing, Payload: []byte("x"), Unmasked: true}), 1002))
	t.add("64-bit length with the most significant bit set → 1002",
		send(frames(F{Op: ws.OpText, Len64: 1 << 63}), Close(1002)))
	for _, c := range []struct {
		n   int
		cut int
		why string
	}{
		{200, 3, "inside its 16-bit length"},
		{65536, 6, "inside its 64-bit length"},
		{200, 6, "inside its masking key"},
		{200, 8, "between header and payload"},
	} {
		p, ev := t.message(1, c.n)
		b := frame(ws.OpText, p).Encode()
		t.add(fmt.Sprintf("%d-byte text frame split %s, second part 20 ms later %s", c.n, c.why, t.outcome(c.n)),
			Step{Raw: b[:c.cut]}, Step{Pause: 20 * time.Millisecond, Raw: b[c.cut:], Expect: []Event{ev}})
	}
}

// pingPong is section 2.
func (t *table) pingPong() {
	t.group("2", "§5.5.2")
	bin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0x80, 0xc0}
	p125 := bytes.Repeat([]byte{0xfe}, 125)
	t.add("ping without payload → empty pong", send(frames(ping("")), Pong(nil)))
	t.add("ping with text payload → pong with the same payload", send(frames(ping("Hello, world!")), Pong([]byte("Hello, world!"))))
	t.add("ping with binary (non-UTF-8) payload → pong with the same payload",
		send(frames(frame(ws.OpPing, bin)), Pong(bin)))
	t.add("ping with 125-byte payload → pong with the same payload", send(frames(frame(ws.OpPing, p125)), Pong(p125)))
	t.addSec("§5.5", "ping with 126-byte payload → 1002, no pong",
		failAfter(frames(frame(ws.OpPing, bytes.Repeat([]byte{'p'}, 126))), 1002))
	t.add("ping with 125-byte payload written byte by byte → pong",
		Step{Frames: frames(frame(ws.OpPing, p125)), Chunk: 1, Expect: []Event{Pong(p125)}})
	t.addSec("§5.5.3", "unsolicited pong without payload → ignored", send(frames(frame(ws.OpPong, nil))))
	t.addSec("§5.5.3", "unsolicited pong with payload → ignored", send(frames(frame(ws.OpPong, []byte("unsolicited")))))
	t.addSec("§5.5.3", "unsolicited pong, then ping → only the ping is answered",
		send(frames(frame(ws.OpPong, []byte("unsolicited")), ping("solicited")), Pong([]byte("solicited"))))
	var pings []F
	var pongs []Event
	for i := range 10 {
		p := "ping " + strconv.Itoa(i)
		pings = append(pings, ping(p))
		pongs = append(pongs, Pong([]byte(p)))
	}
	t.add("10 pings in one write → 10 pongs in order", send(pings, pongs...))
	t.add("10 pings written byte by byte → 10 pongs in order", Step{Frames: pings, Chunk: 1, Expect: pongs})
	t.addSec("§5.5", "ping in 2 fragments (FIN clear, then continuation) → 1002, no pong",
		failAfter(frames(partial(ws.OpPing, []byte("frag")), frame(ws.OpContinuation, []byte("ment"))), 1002))
	t.addSec("§5.5", "pong with 126-byte payload → 1002",
		failAfter(frames(frame(ws.OpPong, bytes.Repeat([]byte{'p'}, 126))), 1002))
	t.add("ping between two commands → ack, pong, ack",
		send(frames(text(command(1)), ping("between"), text(command(2))), Ack(1), Pong([]byte("between")), Ack(2)))
}

// reserved is section 3: every RSV bit, and all three, on text, binary,
// ping, close and continuation frames.
func (t *table) reserved() {
	t.group("3", "§5.2")
	rsvs := []struct {
		bits byte
		name string
	}{{4, "RSV1"}, {2, "RSV2"}, {1, "RSV3"}, {7, "RSV1+RSV2+RSV3"}}
	kinds := []struct {
		name string
		f    F
	}{
		{"text", text(command(2))},
		{"binary", frame(ws.OpBinary, command(2))},
		{"ping", ping("reserved")},
		{"close", closeFrame(1000, "")},
	}
	for _, k := range kinds {
		for _, r := range rsvs {
			f := k.f
			f.Rsv = r.bits
			t.add(fmt.Sprintf("%s set on a %s frame → 1002", r.name, k.name), failAfter(frames(f), 1002))
		}
	}
	t.add("RSV1 set on a continuation frame → 1002",
		failAfter(frames(partial(ws.OpText, command(2)[:5]), F{Op: ws.OpContinuation, Payload: command(2)[5:], Rsv: 4}), 1002))
}

// opcodes is section 4: the reserved opcodes.
func (t *table) opcodes() {
	t.group("4.1", "§5.2")
	for op := ws.OpCode(3); op <= 7; op++ {
		t.add(fmt.Sprintf("reserved non-control opcode %d → 1002", op),
			failAfter(frames(frame(op, []byte("reserved"))), 1002))
	}
	t.group("4.2", "§5.2")
	for op := ws.OpCode(11); op <= 15; op++ {
		t.add(fmt.Sprintf("reserved control opcode %d → 1002", op),
			failAfter(frames(frame(op, []byte("reserved"))), 1002))
	}
	t.group("4.3", "§5.2")
	t.add("reserved opcode 5 without payload → 1002", failAfter(frames(frame(5, nil)), 1002))
	t.add("reserved opcode 11 inside a fragmented message → 1002",
		failAfter(frames(partial(ws.OpText, []byte("{")), frame(11, nil), frame(ws.OpContinuation, []byte("}"))), 1002))
}
