package conformance

import (
	"fmt"
	"time"

	"github.com/gobwas/ws"
)

// fragments is section 5: reassembly, control frames interleaved, and the
// fragmentation errors.
func (t *table) fragments() {
	t.group("5", "§5.4")
	cmd := command(1)
	t.add("text in 2 fragments → delivered", send(fragmented(ws.OpText, split(cmd, 2)...), Ack(1)))
	t.add("text in 3 fragments → delivered", send(fragmented(ws.OpText, split(cmd, 3)...), Ack(1)))
	fs, pongs := withPings(fragmented(ws.OpText, split(cmd, 3)...))
	t.add("text in 3 fragments with pings interleaved → pongs, then delivered", send(fs, append(pongs, Ack(1))...))
	fs, pongs = withPings(fragmented(ws.OpText, split(cmd, 6)...))
	t.add("text in 6 fragments with 5 pings interleaved → 5 pongs in order, then delivered", send(fs, append(pongs, Ack(1))...))
	t.add(fmt.Sprintf("text in %d one-byte fragments → delivered", len(cmd)), send(fragmented(ws.OpText, split(cmd, len(cmd))...), Ack(1)))
	fs, pongs = withPings(fragmented(ws.OpText, split(cmd, 2)...))
	t.add("text in 2 fragments with a ping between, written byte by byte → pong, then delivered",
		Step{Frames: fs, Chunk: 1, Expect: append(pongs, Ack(1))})
	var steps []Step
	for i, f := range fragmented(ws.OpText, split(cmd, 3)...) {
		st := Step{Frames: frames(f)}
		if i > 0 {
			st.Pause = 20 * time.Millisecond
		}
		steps = append(steps, st)
	}
	steps[len(steps)-1].Expect = []Event{Ack(1)}
	t.add("text in 3 fragments, each written 20 ms after the previous → delivered", steps...)
	t.add("binary in 3 fragments → reassembled, then 1003 (commands are text)", send(fragmented(ws.OpBinary, split(cmd, 3)...), Close(1003)))
	fs = fragmented(ws.OpText, split(cmd, 2)...)
	fs = append(fs[:1], append(frames(frame(ws.OpPong, []byte("unsolicited"))), fs[1:]...)...)
	t.add("text in 2 fragments with an unsolicited pong between → delivered, pong ignored", send(fs, Ack(1)))
	t.add("two fragmented messages back to back (text, binary) → the first delivered, then 1003",
		send(append(fragmented(ws.OpText, split(command(1), 2)...), fragmented(ws.OpBinary, split(command(2), 3)...)...), Ack(1), Close(1003)))
	t.add("three empty fragments → an empty text message delivered (bad_json)",
		send(fragmented(ws.OpText, nil, nil, nil), ErrorReply("bad_json")))
	t.add("command with empty first and last fragments → delivered",
		send(fragmented(ws.OpText, nil, cmd, nil), Ack(1)))
	t.add("command followed by two empty continuation fragments → delivered",
		send(fragmented(ws.OpText, cmd, nil, nil), Ack(1)))

	t.add("continuation (FIN set) without a start → 1002",
		failAfter(frames(frame(ws.OpContinuation, []byte("orphan"))), 1002))
	t.add("continuation (FIN clear) without a start → 1002",
		failAfter(frames(partial(ws.OpContinuation, []byte("orphan"))), 1002))
	t.add("continuation after a completed fragmented message → 1002",
		send(append(fragmented(ws.OpText, split(cmd, 2)...), frame(ws.OpContinuation, []byte("orphan")), ping("no")), Ack(1), Close(1002)))
	t.add("text frame inside a fragmented text message → 1002",
		failAfter(frames(partial(ws.OpText, []byte("{")), text(command(2))), 1002))
	t.add("binary frame inside a fragmented text message → 1002",
		failAfter(frames(partial(ws.OpText, []byte("{")), frame(ws.OpBinary, command(2))), 1002))
	t.add("text start (FIN clear) inside a fragmented binary message → 1002",
		failAfter(frames(partial(ws.OpBinary, []byte("{")), partial(ws.OpText, []byte("x")), frame(ws.OpContinuation, []byte("}"))), 1002))
	t.addSec("§5.5", "fragmented ping inside a fragmented text message → 1002",
		failAfter(frames(partial(ws.OpText, []byte("{")), partial(ws.OpPing, []byte("a")), frame(ws.OpContinuation, []byte("}"))), 1002))
	t.addSec("§5.5", "fragmented pong → 1002",
		failAfter(frames(partial(ws.OpPong, []byte("a")), frame(ws.OpContinuation, []byte("b"))), 1002))
	t.addSec("§5.5", "fragmented close → 1002",
		failAfter(frames(F{Op: ws.OpClose, Payload: []byte{0x03, 0xe8}, NotFin: true}, frame(ws.OpContinuation, nil)), 1002))
}

// utf8 is section 6: text messages must be valid UTF-8 after reassembly,
// whatever the fragmentation; binary messages are not checked.
func (t *table) utf8() {
	t.group("6.1", "§8.1")
	t.add("empty text message → delivered (bad_json)", send(frames(text(nil)), ErrorReply("bad_json")))
	t.add("valid UTF-8, not JSON → delivered (bad_json), connection stays open",
		send(frames(text([]byte("Hello-µ@ßöäüàá-UTF-8!!"))), ErrorReply("bad_json")))

	t.group("6.2", "§8.1")
	for _, v := range []struct{ desc, s string }{
		{"Latin-1 supplement (2-byte)", "Hello-µ@ßöäüàá-UTF-8!!"},
		{"Greek κόσμε (2- and 3-byte)", "κόσμε"},
		{"4-byte U+1D11E and U+1F600", "\U0001D11E\U0001F600"},
		{"first and last code point of each length (U+0080 U+07FF U+0800 U+FFFF U+10000 U+10FFFF)", "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff"},
		{"U+E000, U+FFFD and U+FEFF", "\ue000\ufffd\ufeff"},
		{"U+D7FF, the last code point before the surrogates", "\ud7ff"},
	} {
		t.add("valid UTF-8: "+v.desc+" → delivered", send(frames(text(commandWith(1, []byte(v.s)))), Ack(1)))
	}

	t.group("6.3", "§8.1")
	four := commandWith(1, []byte("\U0001F600")) // a 4-byte code point near the end
	at := len(four) - 2 - 4                      // index of its first byte
	t.add("4-byte code point split 2+2 across fragments → delivered",
		send(fragmented(ws.OpText, four[:at+2], four[at+2:]), Ack(1)))
	t.add("4-byte code point split 1+1+1+1 across four fragments → delivered",
		send(fragmented(ws.OpText, four[:at+1], four[at+1:at+2], four[at+2:at+3], four[at+3:]), Ack(1)))
	three := commandWith(1, []byte("€"))
	at = len(three) - 2 - 3
	fs, pongs := withPings(fragmented(ws.OpText, three[:at+1], three[at+1:]))
	t.add("3-byte € split 1+2 across fragments with a ping between → pong, then delivered", send(fs, append(pongs, Ack(1))...))
	greek := commandWith(1, []byte("κόσμε"))
	t.add("κόσμε command in one-byte fragments → delivered", send(fragmented(ws.OpText, split(greek, len(greek))...), Ack(1)))

	t.group("6.4", "§8.1")
	for _, v := range []struct {
		desc string
		b    []byte
	}{
		{"lone continuation byte 0x80", []byte{0x80}},
		{"continuation bytes 0x80 0xBF 0x80", []byte{0x80, 0xbf, 0x80}},
		{"overlong 2-byte '/' (C0 AF)", []byte{0xc0, 0xaf}},
		{"overlong 2-byte U+007F (C1 BF)", []byte{0xc1, 0xbf}},
		{"overlong 3-byte '/' (E0 80 AF)", []byte{0xe0, 0x80, 0xaf}},
		{"overlong 4-byte '/' (F0 80 80 AF)", []byte{0xf0, 0x80, 0x80, 0xaf}},
		{"overlong 4-byte U+FFFF (F0 8F BF BF)", []byte{0xf0, 0x8f, 0xbf, 0xbf}},
		{"surrogate U+D800 (ED A0 80)", []byte{0xed, 0xa0, 0x80}},
		{"surrogate U+DFFF (ED BF BF)", []byte{0xed, 0xbf, 0xbf}},
		{"surrogate pair U+D83D U+DE00 encoded separately (CESU-8)", []byte{0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80}},
		{"code point U+110000 above U+10FFFF (F4 90 80 80)", []byte{0xf4, 0x90, 0x80, 0x80}},
		{"code point U+1FFFFF (F7 BF BF BF)", []byte{0xf7, 0xbf, 0xbf, 0xbf}},
		{"5-byte sequence (F8 88 80 80 80)", []byte{0xf8, 0x88, 0x80, 0x80, 0x80}},
		{"6-byte sequence (FC 84 80 80 80 80)", []byte{0xfc, 0x84, 0x80, 0x80, 0x80, 0x80}},
		{"bytes FE and FF", []byte{0xfe, 0xff}},
		{"start byte followed by ASCII (C2 41)", []byte{0xc2, 0x41}},
		{"κόσμε with a surrogate inside (ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 …)", append([]byte("κόσμε"), 0xed, 0xa0, 0x80, 'e', 'd')},
	} {
		t.add("invalid UTF-8: "+v.desc+" → 1007", failAfter(frames(text(commandWith(2, v.b))), 1007))
	}
	t.add("invalid UTF-8: truncated 3-byte sequence at the end of the message (E2 82) → 1007",
		failAfter(frames(text(append(commandWith(2, nil), 0xe2, 0x82))), 1007))

	t.group("6.5", "§8.1")
	bad := commandWith(2, []byte("\xe2\x82("))
	badAt := len(bad) - 2 - 3
	t.add("invalid sequence split across fragments (E2 82 | 28) → 1007",
		failAfter(fragmented(ws.OpText, bad[:badAt+2], bad[badAt+2:]), 1007))
	sur := commandWith(2, []byte{0xed, 0xa0, 0x80})
	at = len(sur) - 2 - 3
	t.add("surrogate U+D800 split across fragments (ED | A0 80) → 1007",
		failAfter(fragmented(ws.OpText, sur[:at+1], sur[at+1:]), 1007))
	trunc := append(commandWith(2, nil), 0xf0, 0x9f)
	t.add("valid first half of a 4-byte sequence (F0 9F) ending the last fragment → 1007",
		failAfter(fragmented(ws.OpText, trunc[:10], trunc[10:]), 1007))
	first := append([]byte{0xff}, command(2)...)
	t.add("invalid byte in the first fragment, valid rest → 1007",
		failAfter(fragmented(ws.OpText, first[:4], first[4:]), 1007))
	t.add("invalid UTF-8 split across fragments with a ping between → pong, then 1007",
		send(frames(partial(ws.OpText, bad[:badAt+2]), ping("mid"), frame(ws.OpContinuation, bad[badAt+2:])), Pong([]byte("mid")), Close(1007)))

	t.group("6.6", "§5.6")
	t.add("binary message with invalid UTF-8 → not UTF-8 checked: 1003, not 1007",
		send(frames(frame(ws.OpBinary, []byte{0xff, 0xfe, 0xed, 0xa0, 0x80})), Close(1003)))
	t.add("binary command with invalid UTF-8 in a string member → 1003, not 1007",
		send(frames(frame(ws.OpBinary, commandWith(1, []byte{0xc0, 0xaf}))), Close(1003)))
}
