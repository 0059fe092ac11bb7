package conformance

import (
	"bytes"
	"fmt"
	"time"

	"github.com/gobwas/ws"
)

// closeCodeNames names the registered close codes in the descriptions.
var closeCodeNames = map[uint16]string{
	1000: "normal closure", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
	1004: "reserved", 1005: "no status received, never on the wire", 1006: "abnormal closure, never on the wire",
	1007: "invalid payload data", 1008: "policy violation", 1009: "message too big", 1010: "mandatory extension",
	1011: "internal error", 1012: "IANA: service restart", 1013: "IANA: try again later", 1014: "IANA: bad gateway",
	1015: "TLS handshake, never on the wire",
}

func codeName(c uint16) string {
	if n, ok := closeCodeNames[c]; ok {
		return fmt.Sprintf("%d (%s)", c, n)
	}
	return fmt.Sprint(c)
}

// closing is section 7: the close handshake, close payloads and codes.
func (t *table) closing() {
	t.group("7.1", "§5.5.1")
	t.addSec("§7.1.2", "command, then close 1000 → ack, close 1000 echoed, TCP closed",
		send(frames(text(command(1)), closeFrame(1000, "")), Ack(1), Close(1000)))
	t.addSec("§7.1.2", "three commands, then close → three acks before the close echo",
		send(frames(text(command(1)), text(command(2)), text(command(3)), closeFrame(1000, "")), Ack(1), Ack(2), Ack(3), Close(1000)))
	t.add("close sent twice → echoed once, TCP closed", send(frames(closeFrame(1000, ""), closeFrame(1000, "")), Close(1000)))
	t.add("ping after close → no pong", send(frames(closeFrame(1000, ""), ping("after close")), Close(1000)))
	t.add("command after close, same write → ignored (no ack)", send(frames(closeFrame(1000, ""), text(command(2))), Close(1000)))
	t.add("command and ping 20 ms after close → ignored",
		Step{Frames: frames(closeFrame(1000, ""))},
		Step{Pause: 20 * time.Millisecond, Frames: frames(text(command(2)), ping("after close")), Expect: []Event{Close(1000)}})
	t.add("fragmented message interrupted by close → close echoed, message not delivered",
		send(frames(partial(ws.OpText, command(2)[:5]), closeFrame(1000, ""), frame(ws.OpContinuation, command(2)[5:])), Close(1000)))
	t.addSec("§7.1.1", "close 1000 with a reason → close 1000, then the server ends the TCP connection",
		send(frames(closeFrame(1000, "bye")), Close(1000)))

	t.group("7.3", "§5.5.1")
	t.add("empty close → empty close echoed", send(frames(frame(ws.OpClose, nil)), Close(0)))
	t.add("close with a 1-byte payload → 1002", failAfter(frames(frame(ws.OpClose, []byte{0x03})), 1002))
	t.add("close with a code and no reason → code echoed", send(frames(closeFrame(1000, "")), Close(1000)))
	t.add("close with a code and a reason → code echoed", send(frames(closeFrame(1000, "goodbye")), Close(1000)))
	t.add("close with a 123-byte reason (125-byte payload) → code echoed",
		send(frames(closeFrame(1000, string(bytes.Repeat([]byte{'r'}, 123)))), Close(1000)))
	t.addSec("§5.5", "close with a 124-byte reason (126-byte payload) → 1002",
		failAfter(frames(closeFrame(1000, string(bytes.Repeat([]byte{'r'}, 124)))), 1002))

	t.group("7.5", "§5.5.1")
	t.add("close with an invalid UTF-8 reason (FF) → 1007", failAfter(frames(closeFrame(1000, "bye\xff")), 1007))
	t.add("close with a surrogate in the reason (ED A0 80) → 1007", failAfter(frames(closeFrame(1000, "\xed\xa0\x80")), 1007))
	t.add("close with a valid multi-byte UTF-8 reason (κόσμε 𝄞) → code echoed",
		send(frames(closeFrame(1000, "κόσμε \U0001D11E")), Close(1000)))

	t.group("7.7", "§7.4.1")
	for _, c := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		sec := "§7.4.1"
		switch {
		case c >= 1012 && c <= 1014:
			sec = "§7.4.2"
		case c >= 3000:
			sec = "§7.4.2"
		}
		t.addSec(sec, fmt.Sprintf("close with valid code %s → same code echoed", codeName(c)),
			send(frames(closeFrame(c, "")), Close(int(c))))
	}

	t.group("7.9", "§7.4.2")
	for _, c := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		sec := "§7.4.2"
		if c >= 1004 && c <= 1015 {
			sec = "§7.4.1"
		}
		t.addSec(sec, fmt.Sprintf("close with invalid code %s → 1002", codeName(c)),
			failAfter(frames(closeFrame(c, "")), 1002))
	}
	t.add("close with invalid code 1005 and a reason → 1002", failAfter(frames(closeFrame(1005, "reason")), 1002))
}

// limits is section 9: --max-message, single-frame and reassembled.
func (t *table) limits() {
	m := t.cfg.MaxMessage
	t.group("9", "§10.4")
	at, atEv := t.message(1, m)
	over, overEv := t.message(1, m+1)
	t.add(fmt.Sprintf("text message of --max-message (%d) bytes → delivered", m), send(frames(text(at)), atEv))
	t.addSec("§7.4.1", fmt.Sprintf("text message of %d bytes, one over --max-message → 1009, not delivered", m+1),
		send(frames(text(over)), overEv))
	t.add(fmt.Sprintf("binary message of %d bytes → 1003 (commands are text), not 1009", m), send(frames(frame(ws.OpBinary, at)), Close(1003)))
	t.addSec("§7.4.1", fmt.Sprintf("binary message of %d bytes → 1009", m+1), send(frames(frame(ws.OpBinary, over)), overEv))
	t.add(fmt.Sprintf("text message of %d bytes in 4 fragments → delivered", m),
		send(fragmented(ws.OpText, split(at, 4)...), atEv))
	t.addSec("§7.4.1", fmt.Sprintf("text message of %d bytes in 4 fragments → 1009, not delivered", m+1),
		send(fragmented(ws.OpText, split(over, 4)...), overEv))
	t.addSec("§7.4.1", fmt.Sprintf("binary message of %d bytes in 4 fragments → 1009", m+1),
		send(fragmented(ws.OpBinary, split(over, 4)...), overEv))
	n64 := max(1, (m+63)/64)
	t.add(fmt.Sprintf("text message of %d bytes in %d fragments of at most 64 bytes → delivered", m, n64),
		send(fragmented(ws.OpText, split(at, n64)...), atEv))
	t.addSec("§7.4.1", "frame header announcing 2^31 bytes, no payload sent → 1009 without waiting for the payload",
		send(frames(F{Op: ws.OpText, Len64: 1 << 31}), Close(1009)))
	half := (m + 1) / 2
	t.addSec("§7.4.1", "second fragment header taking the message over --max-message, no payload sent → 1009",
		Step{Frames: frames(partial(ws.OpText, bytes.Repeat([]byte{' '}, half))),
			Raw: headerOnly(ws.OpContinuation, true, m-half+1), Expect: []Event{Close(1009)}})
	var ten []F
	var acks []Event
	for i := range 10 {
		p, ev := t.message(int64(i+1), m)
		ten = append(ten, text(p))
		acks = append(acks, ev)
	}
	t.add(fmt.Sprintf("ten messages of %d bytes in one write → ten deliveries in order", m), send(ten, acks...))
	t.add(fmt.Sprintf("message of %d bytes, then one of %d → delivered, then 1009", m, m+1),
		send(frames(text(at), text(overAs(t, 2, m+1))), atEv, Close(1009)))
	t.add(fmt.Sprintf("text message of %d bytes written in 997-byte chunks → delivered", m),
		Step{Frames: frames(text(at)), Chunk: 997, Expect: []Event{atEv}})
	fs, pongs := withPings(fragmented(ws.OpText, split(at, 2)...))
	fs[1] = frame(ws.OpPing, bytes.Repeat([]byte{'c'}, 125))
	pongs[0] = Pong(fs[1].Payload)
	t.add(fmt.Sprintf("text message of %d bytes in 2 fragments with a 125-byte ping between → pong, delivered (control frames do not count)", m),
		send(fs, append(pongs, atEv)...))
}

// overAs is an n-byte message for command id (n over the limit).
func overAs(t *table, id int64, n int) []byte {
	p, _ := t.message(id, n)
	return p
}
