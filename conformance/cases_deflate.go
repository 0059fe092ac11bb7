package conformance

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/gobwas/ws"
)

// Sections 12 and 13, modelled on Autobahn's: permessage-deflate (RFC
// 7692) with payloads of many sizes and kinds (12), and the negotiation of
// its parameters (13). wspushd does not echo, so a case's "echo" is a
// client publish to a topic the connection subscribes to: the delivery
// comes back (compressed once the payload reaches the server's default
// --compression-min-size of 256 bytes and compressing shrinks it), then
// the publish's ack.

// zipTopic is the topic the compression cases publish to.
const zipTopic = "z"

// deflateMin is wspushd's default --compression-min-size.
const deflateMin = 256

// browserOffer is the offer every browser makes.
const browserOffer = "permessage-deflate; client_max_window_bits"

// jsonData is n bytes of JSON: price ticks, which compress well, or (hex)
// hex digits from a seeded generator, which compress about 2:1.
func jsonData(n int, hex bool) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, 0, n)
	b = append(b, `{"v":"`...)
	for len(b) < n-2 {
		if hex {
			b = append(b, "0123456789abcdef"[r.IntN(16)])
			continue
		}
		b = fmt.Appendf(b, "%s %d.%02d ", []string{"ABC", "XYZ", "QRS"}[r.IntN(3)], 100+r.IntN(3), r.IntN(100))
	}
	b = b[:max(n-2, 6)]
	return append(b, `"}`...)
}

// publish is a client publish of data to zipTopic with id.
func publish(id int64, data []byte) []byte {
	out := []byte(`{"op":"publish","topic":"` + zipTopic + `","id":` + strconv.FormatInt(id, 10) + `,"data":`)
	out = append(out, data...)
	return append(out, '}')
}

// subscribeZip subscribes to zipTopic with id 1, the command compressed
// when zip.
func subscribeZip(zip bool) Step {
	cmd := []byte(`{"op":"subscribe","topics":["` + zipTopic + `"],"id":1}`)
	f := text(cmd)
	if zip {
		f = zipped(ws.OpText, cmd)
	}
	return send(frames(f), Ack(1))
}

// echo publishes data (the command compressed when zip) and expects its
// delivery, compressed as want says (see wantZip), then the ack.
func echo(id int64, data []byte, zip bool, want int8) Step {
	cmd := publish(id, data)
	f := text(cmd)
	if zip {
		f = zipped(ws.OpText, cmd)
	}
	return send(frames(f), Deliver(zipTopic, data, want), Ack(id))
}

// wantZip is how the delivery of data must come: plain below the minimum
// or without the extension; above it compressed for price ticks, either
// for hex digits (compressing must save more than a frame header).
func wantZip(data []byte, deflateOn, hex bool) int8 {
	switch {
	case !deflateOn || len(data)+len(`{"topic":"z","seq":1,"data":}`) < deflateMin:
		return -1
	case hex:
		return 0
	}
	return 1
}

// compressed is section 12: payload sizes and kinds, fragmentation, plain
// messages on a compressing connection, and what must fail.
func (t *table) compressed() {
	sizes := []int{16, 64, 200, 256, 1024, 4096, 16384, 32768}
	for i, kind := range []string{"price ticks", "hex digits"} {
		t.group("12."+strconv.Itoa(i+1), "RFC 7692 §7")
		for _, n := range sizes {
			data := jsonData(n, i == 1)
			want := wantZip(data, true, i == 1)
			t.addDeflate(browserOffer, true, fmt.Sprintf("compressed publish of %d bytes of %s, echoed", n, kind),
				subscribeZip(true), echo(2, data, true, want), echo(3, data, true, want))
		}
	}
	t.group("12.3", "RFC 7692 §6.1")
	for _, parts := range []int{2, 3, 7} {
		data := jsonData(4096, false)
		fs := zippedParts(publish(2, data), parts)
		t.addDeflate(browserOffer, true, fmt.Sprintf("compressed publish in %d fragments (RSV1 on the first)", parts),
			subscribeZip(true), send(fs, Deliver(zipTopic, data, 1), Ack(2)))
	}
	t.group("12.4", "RFC 7692 §6")
	for _, n := range []int{16, 1024} {
		data := jsonData(n, false)
		t.addDeflate(browserOffer, true, fmt.Sprintf("plain publish of %d bytes on a compressing connection", n),
			subscribeZip(false), echo(2, data, false, wantZip(data, true, false)))
	}
	t.group("12.5", "RFC 7692 §6")
	t.addDeflate(browserOffer, true, "a message inflating past --max-message → 1009",
		failAfterZip(frames(zipped(ws.OpText, bytes.Repeat([]byte{' '}, 2*t.cfg.MaxMessage+1))), 1009))
	t.addDeflate(browserOffer, true, "a compressed message that is not deflate data → 1007",
		failAfterZip(frames(F{Op: ws.OpText, Rsv: 4, Payload: []byte{0xff, 0xff, 0xff}}), 1007))
	t.addDeflate(browserOffer, true, "a compressed message that inflates to invalid UTF-8 → 1007",
		failAfterZip(frames(zipped(ws.OpText, []byte("bad \xc3\x28 utf-8"))), 1007))
	t.addDeflate(browserOffer, true, "RSV1 on a continuation frame → 1002",
		failAfterZip(frames(partial(ws.OpText, []byte("{")), F{Op: ws.OpContinuation, Rsv: 4, Payload: []byte("}")}), 1002))
	t.addDeflate(browserOffer, true, "RSV1 on a ping → 1002", failAfterZip(frames(F{Op: ws.OpPing, Rsv: 4}), 1002))
	t.addDeflate(browserOffer, true, "RSV2 on a compressing connection → 1002", failAfterZip(frames(F{Op: ws.OpText, Rsv: 2, Payload: []byte("{}")}), 1002))
	t.addDeflate("", false, "RSV1 without the extension → 1002", failAfterZip(frames(zipped(ws.OpText, command(2))), 1002))
}

// failAfterZip is failAfter on a connection that subscribed to zipTopic.
func failAfterZip(bad []F, code int) Step {
	fs := append(frames(text(command(1))), bad...)
	fs = append(fs, ping("must not be answered"))
	return send(fs, Ack(1), Close(code))
}

// negotiation is section 13: offers the server accepts (then compressed
// echoes of three sizes) and offers it declines (then plain ones).
func (t *table) negotiation() {
	t.group("13.1", "RFC 7692 §7.1")
	offers := []struct {
		offer  string
		accept bool
	}{
		{"permessage-deflate", true},
		{"permessage-deflate; client_no_context_takeover", true},
		{"permessage-deflate; server_no_context_takeover", true},
		{browserOffer, true},
		{"permessage-deflate; client_max_window_bits=15", true},
		{"permessage-deflate; client_max_window_bits=9; client_no_context_takeover; server_no_context_takeover", true},
		{"permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits", true},
		{"permessage-deflate; server_max_window_bits=10", false},
		{"permessage-deflate; client_max_window_bits=7", false},
		{"permessage-deflate; no_such_parameter", false},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", false},
		{"x-webkit-deflate-frame", false},
	}
	for _, o := range offers {
		verb := "declined"
		if o.accept {
			verb = "accepted"
		}
		steps := []Step{subscribeZip(o.accept)}
		for i, n := range []int{64, 1024, 16384} {
			data := jsonData(n, false)
			steps = append(steps, echo(int64(i+2), data, o.accept, wantZip(data, o.accept, false)))
		}
		t.addDeflate(o.offer, o.accept, fmt.Sprintf("offer %q %s, then echoes", o.offer, verb), steps...)
	}
}

// declined is section 13 for a server without --compression: every offer
// is declined and messages go plain.
func (t *table) declined() {
	t.group("13.1", "RFC 7692 §5")
	t.addDeflate(browserOffer, false, "a server without --compression declines the browser's offer",
		send(frames(text(command(1))), Ack(1)))
}

// addDeflate is add for a case with an extension offer.
func (t *table) addDeflate(offer string, accept bool, desc string, steps ...Step) {
	t.add(desc, steps...)
	c := &t.cases[len(t.cases)-1]
	c.Offer, c.Deflate = offer, accept
}
