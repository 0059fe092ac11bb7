package conformance

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wsframe"
	"github.com/wspush/wspush/internal/wstest"
)

// Cases returns the case table for a server configured as cfg describes
// (the limits cases and the messages larger than cfg.MaxMessage depend on
// it), in section order. Case ids are stable for a given cfg.
func Cases(cfg Config) []Case {
	t := &table{cfg: cfg.withDefaults()}
	t.framing()   // 1
	t.pingPong()  // 2
	t.reserved()  // 3
	t.opcodes()   // 4
	t.fragments() // 5
	t.utf8()      // 6
	t.closing()   // 7
	t.limits()    // 9
	if t.cfg.Compression {
		t.compressed()  // 12
		t.negotiation() // 13
	} else {
		t.declined() // 13
	}
	return t.cases
}

// table builds the case list, numbering cases within a group.
type table struct {
	cfg     Config
	cases   []Case
	prefix  string // "7.7"
	n       int    // cases in the group so far
	section string // default RFC section of the group
}

func (t *table) group(prefix, section string) { t.prefix, t.n, t.section = prefix, 0, section }

// add appends the next case of the group.
func (t *table) add(desc string, steps ...Step) {
	t.addSec(t.section, desc, steps...)
}

// addSec is add with a section other than the group's.
func (t *table) addSec(section, desc string, steps ...Step) {
	t.n++
	t.cases = append(t.cases, Case{
		ID:      t.prefix + "." + strconv.Itoa(t.n),
		Section: section,
		Desc:    desc,
		Steps:   steps,
	})
}

// F is a frame to send.
type F = wstest.Frame

func frame(op ws.OpCode, p []byte) F   { return F{Op: op, Payload: p} }
func partial(op ws.OpCode, p []byte) F { return F{Op: op, Payload: p, NotFin: true} }
func text(p []byte) F                  { return frame(ws.OpText, p) }
func ping(p string) F                  { return frame(ws.OpPing, []byte(p)) }
func closeFrame(code uint16, reason string) F {
	return frame(ws.OpClose, wstest.CloseFramePayload(code, reason))
}

// headerOnly is a masked frame header announcing n payload bytes (minimal
// length encoding), for sending without its payload.
func headerOnly(op ws.OpCode, fin bool, n int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	return wsframe.Append(nil, b0, uint64(n), &[4]byte{0x37, 0xfa, 0x21, 0x3d})
}

// send is a step that writes frames in one write and expects evs.
func send(frames []F, evs ...Event) Step { return Step{Frames: frames, Expect: evs} }

// frames is a readable []F literal.
func frames(fs ...F) []F { return fs }

// command is {"op":"subscribe","topics":["t"],"id":id}: a valid protocol v1
// command whose ack proves that the message was delivered.
func command(id int64) []byte {
	return []byte(`{"op":"subscribe","topics":["t"],"id":` + strconv.FormatInt(id, 10) + `}`)
}

// commandLen is command(id) padded with JSON white space to exactly n bytes.
// n must be at least len(command(id)).
func commandLen(id int64, n int) []byte {
	c := command(id)
	if n < len(c) {
		panic(fmt.Sprintf("conformance: command of %d bytes cannot be %d", len(c), n))
	}
	out := make([]byte, 0, n)
	out = append(out, c[:len(c)-1]...)
	out = append(out, bytes.Repeat([]byte{' '}, n-len(c))...)
	return append(out, '}')
}

// commandWith is command(id) with an extra string member holding raw (not
// escaped): {"op":"subscribe","topics":["t"],"id":id,"x":"<raw>"}. Unknown
// members are ignored by the server, so valid UTF-8 in raw gets an ack.
func commandWith(id int64, raw []byte) []byte {
	c := command(id)
	out := append([]byte(nil), c[:len(c)-1]...)
	out = append(out, `,"x":"`...)
	out = append(out, raw...)
	return append(out, `"}`...)
}

// message returns an n-byte payload and the event that proves its delivery:
// the ack of a padded command, or a bad_json error for payloads too short
// to be a command. Over the server's max-message the event is a 1009 close.
func (t *table) message(id int64, n int) ([]byte, Event) {
	var p []byte
	ev := Ack(id)
	switch c := command(id); {
	case n >= len(c):
		p = commandLen(id, n)
	default:
		p, ev = bytes.Repeat([]byte{'x'}, n), ErrorReply("bad_json")
	}
	if n > t.cfg.MaxMessage {
		ev = Close(1009)
	}
	return p, ev
}

// outcome describes what a message of n bytes should get, for descriptions.
func (t *table) outcome(n int) string {
	if n > t.cfg.MaxMessage {
		return fmt.Sprintf("→ 1009 (over --max-message %d)", t.cfg.MaxMessage)
	}
	return "→ delivered"
}

// binaryMessage is message for a binary message: commands are text, so a
// binary message that is whole and within --max-message gets 1003
// (unsupported data); one over the limit still gets 1009 first.
func (t *table) binaryMessage(id int64, n int) ([]byte, Event) {
	p, ev := t.message(id, n)
	if n <= t.cfg.MaxMessage {
		ev = Close(1003)
	}
	return p, ev
}

// binaryOutcome is outcome for a binary message.
func (t *table) binaryOutcome(n int) string {
	if n > t.cfg.MaxMessage {
		return t.outcome(n)
	}
	return "→ 1003 (commands are text)"
}

// split cuts p into n parts of nearly equal size (some may be empty when
// n > len(p)).
func split(p []byte, n int) [][]byte {
	parts := make([][]byte, n)
	for i := range n {
		parts[i] = p[len(p)*i/n : len(p)*(i+1)/n]
	}
	return parts
}

// fragmented sends parts as one message of opcode op: the first frame has
// op, the others are continuations, the last has FIN.
func fragmented(op ws.OpCode, parts ...[]byte) []F {
	fs := make([]F, len(parts))
	for i, p := range parts {
		fs[i] = F{Op: ws.OpContinuation, Payload: p, NotFin: i < len(parts)-1}
		if i == 0 {
			fs[i].Op = op
		}
	}
	return fs
}

// withPings puts a ping "p<i>" after each fragment but the last, and
// returns the frames and the pongs they must get.
func withPings(fs []F) ([]F, []Event) {
	var out []F
	var pongs []Event
	for i, f := range fs {
		out = append(out, f)
		if i < len(fs)-1 {
			p := "p" + strconv.Itoa(i+1)
			out = append(out, ping(p))
			pongs = append(pongs, Pong([]byte(p)))
		}
	}
	return out, pongs
}

// failAfter is the Autobahn pattern for a frame that must fail the
// connection: a valid command first (acked), then the bad frame, then a
// ping that must not be answered, and the close with code.
func failAfter(bad []F, code int) Step {
	fs := append(frames(text(command(1))), bad...)
	fs = append(fs, ping("must not be answered"))
	return send(fs, Ack(1), Close(code))
}
