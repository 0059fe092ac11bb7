package conformance

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

// Config describes the server under test and bounds the run.
type Config struct {
	// MaxMessage is the server's --max-message in bytes. Zero means 65536,
	// wspushd's default. Cases whose message is larger expect 1009.
	// Sections 5-7 send commands of up to about 100 bytes and assume at
	// least 128; sections 1, 2, 3, 4 and 9 work with any value.
	MaxMessage int
	// CaseTimeout bounds each case, connection included. Zero means 5s.
	CaseTimeout time.Duration
	// Path is the upgrade request target. Empty means "/ws".
	Path string
	// Header holds extra upgrade request headers (e.g. Origin).
	Header http.Header
	// Compression says the server runs with --compression and
	// --client-publish: the permessage-deflate sections (12 and 13, RFC
	// 7692) are in the table, and their cases publish to themselves.
	Compression bool
}

func (c Config) withDefaults() Config {
	if c.MaxMessage <= 0 {
		c.MaxMessage = 64 << 10
	}
	if c.CaseTimeout <= 0 {
		c.CaseTimeout = 5 * time.Second
	}
	if c.Path == "" {
		c.Path = "/ws"
	}
	return c
}

// Case is one conformance check, played on a fresh connection.
type Case struct {
	ID      string // Autobahn-style id, e.g. "5.3"
	Section string // the RFC 6455 section it checks, e.g. "§5.4"
	Desc    string // one line
	Steps   []Step
	// Known is set when the case is a known server failure: why it fails.
	// Its failure is reported but does not fail the suite.
	Known string
	// Offer, when set, is the upgrade's Sec-WebSocket-Extensions offer, and
	// Deflate says whether the server must accept permessage-deflate for
	// it (else it must decline every extension).
	Offer   string
	Deflate bool
}

// Name is the case's id and description, the subtest name.
func (c Case) Name() string { return c.ID + " " + c.Desc }

// Step sends bytes, then expects server frames in order.
type Step struct {
	Pause  time.Duration  // wait before sending
	Frames []wstest.Frame // encoded and sent together
	Raw    []byte         // sent verbatim after Frames
	// Chunk, when positive, splits what is sent into writes of at most
	// Chunk bytes, with a short pause after each so that the server sees
	// partial frames.
	Chunk  int
	Expect []Event
}

// EventKind is what a server frame must be.
type EventKind int

// The expectable server frames.
const (
	EvAck     EventKind = iota + 1 // text {"op":"ack","id":ID}
	EvError                        // text {"op":"error",...,"code":Code} (any id)
	EvPong                         // pong with Payload
	EvClose                        // close with CloseCode (0: empty), then TCP close
	EvDeliver                      // text {"topic":Code,"seq":N,"data":Payload}, Zipped as said
)

// Event is one expected server frame.
type Event struct {
	Kind      EventKind
	ID        int64
	Code      string
	Payload   []byte
	CloseCode int
	// Zipped, for EvDeliver: 1 the frame must be compressed (RSV1), -1 it
	// must not, 0 either.
	Zipped int8
}

// Ack expects the ack of command id.
func Ack(id int64) Event { return Event{Kind: EvAck, ID: id} }

// ErrorReply expects an error reply with the given protocol error code.
func ErrorReply(code string) Event { return Event{Kind: EvError, Code: code} }

// Pong expects a pong carrying p.
func Pong(p []byte) Event { return Event{Kind: EvPong, Payload: p} }

// Close expects a close frame with code (0: an empty close frame), after
// which the server must end the TCP connection. When the client has not
// sent a close itself, the runner answers the server's close first.
func Close(code int) Event { return Event{Kind: EvClose, CloseCode: code} }

// String describes the expected event, for reports.
func (e Event) String() string {
	switch e.Kind {
	case EvAck:
		return "ack " + strconv.FormatInt(e.ID, 10)
	case EvError:
		return "error " + e.Code
	case EvPong:
		return "pong " + short(e.Payload)
	case EvClose:
		if e.CloseCode == 0 {
			return "empty close"
		}
		return "close " + strconv.Itoa(e.CloseCode)
	case EvDeliver:
		return deliverString(e)
	}
	return fmt.Sprintf("event(%d)", e.Kind)
}

// Status is a case's outcome.
type Status int

// Outcomes. KnownFail and KnownPass apply to cases marked Known.
const (
	Pass      Status = iota + 1
	Fail             // an unexpected failure: the suite fails
	KnownFail        // a known server failure, still failing
	KnownPass        // a known failure that now passes: remove the mark
)

// String returns the report word for the outcome (PASS, FAIL, KNOWN-…).
func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case KnownFail:
		return "KNOWN-FAIL"
	case KnownPass:
		return "KNOWN-PASS"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Result is one case's outcome.
type Result struct {
	Case     Case
	Status   Status
	Detail   string // why it failed: "got close 1002, want ack 5"
	Duration time.Duration
}

// Run plays every case of Cases(cfg) against the WebSocket listener at
// wsAddr, one after the other, and returns their results in table order.
// When ctx ends, the remaining cases fail quickly.
func Run(ctx context.Context, wsAddr string, cfg Config) []Result {
	var rs []Result
	for _, c := range Cases(cfg) {
		rs = append(rs, RunCase(ctx, wsAddr, cfg, c))
	}
	return rs
}

// RunCase plays one case on a new connection to wsAddr.
func RunCase(ctx context.Context, wsAddr string, cfg Config, c Case) Result {
	cfg = cfg.withDefaults()
	start := time.Now()
	err := runCase(ctx, wsAddr, cfg, c)
	r := Result{Case: c, Duration: time.Since(start)}
	switch {
	case err == nil && c.Known == "":
		r.Status = Pass
	case err == nil:
		r.Status = KnownPass
	case c.Known == "":
		r.Status, r.Detail = Fail, err.Error()
	default:
		r.Status, r.Detail = KnownFail, err.Error()
	}
	return r
}

// session is one case's connection and what the client did on it.
type session struct {
	c         *wstest.Client
	deadline  time.Time
	deflate   bool  // permessage-deflate was negotiated
	sentClose bool  // the client sent a close frame
	closed    bool  // a close event completed: nothing more to read
	writeErr  error // the first write error, reported with a failure
}

func runCase(ctx context.Context, addr string, cfg Config, c Case) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.CaseTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	cl, err := wstest.Dial(addr, cfg.Path, withOffer(cfg.Header, c.Offer))
	if err != nil {
		return fmt.Errorf("upgrade: %v", err)
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, func() { cl.Close() })
	defer stop()
	s := &session{c: cl, deadline: deadline}
	if s.deflate, err = negotiated(cl, c); err != nil {
		return err
	}
	for _, st := range c.Steps {
		if st.Pause > 0 {
			if err := sleep(ctx, st.Pause); err != nil {
				return err
			}
		}
		s.send(st)
		for _, ev := range st.Expect {
			if err := s.expect(ev); err != nil {
				return s.annotate(err)
			}
		}
		if s.closed {
			return nil
		}
	}
	// The connection must still be usable, and nothing else may be pending.
	s.write(frame(ws.OpPing, []byte(aliveProbe)))
	if err := s.expect(Pong([]byte(aliveProbe))); err != nil {
		return s.annotate(fmt.Errorf("connection not usable afterwards: %w", err))
	}
	return nil
}

// aliveProbe is the payload of the ping that ends a case whose connection
// stays open.
const aliveProbe = "conformance-alive"

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) annotate(err error) error {
	if s.writeErr != nil {
		return fmt.Errorf("%w; earlier write error: %v", err, s.writeErr)
	}
	return err
}

// send writes a step's frames and raw bytes. Write errors are remembered,
// not fatal: a server that failed the connection may already have closed
// its end, and its close frame is still there to read.
func (s *session) send(st Step) {
	var b []byte
	for _, f := range st.Frames {
		if f.Op == ws.OpClose {
			s.sentClose = true
		}
		b = append(b, f.Encode()...)
	}
	b = append(b, st.Raw...)
	if len(b) == 0 {
		return
	}
	if st.Chunk <= 0 {
		s.writeBytes(b)
		return
	}
	for len(b) > 0 && s.writeErr == nil {
		n := min(st.Chunk, len(b))
		s.writeBytes(b[:n])
		b = b[n:]
		time.Sleep(200 * time.Microsecond)
	}
}

func (s *session) write(f wstest.Frame) { s.writeBytes(f.Encode()) }

func (s *session) writeBytes(b []byte) {
	s.c.Conn.SetWriteDeadline(s.deadline)
	if _, err := s.c.Conn.Write(b); err != nil && s.writeErr == nil {
		s.writeErr = err
	}
}

// got is one thing read from the server: a frame (its payload inflated
// when it was compressed) or a read error.
type got struct {
	op     ws.OpCode
	p      []byte
	zipped bool // RSV1 was set
	err    error
}

func (g got) String() string {
	if g.err != nil {
		switch {
		case isTimeout(g.err):
			return "nothing (timeout)"
		case isConnEnd(g.err):
			how := "EOF"
			if errors.Is(g.err, syscall.ECONNRESET) {
				how = "connection reset"
			}
			return "TCP close (" + how + ") without a close frame"
		}
		return "read error: " + g.err.Error()
	}
	if g.zipped {
		return "compressed " + got{op: g.op, p: g.p}.String()
	}
	switch g.op {
	case ws.OpText:
		return "text " + short(g.p)
	case ws.OpBinary:
		return "binary " + short(g.p)
	case ws.OpPing:
		return "ping " + short(g.p)
	case ws.OpPong:
		return "pong " + short(g.p)
	case ws.OpClose:
		switch {
		case len(g.p) == 0:
			return "empty close"
		case len(g.p) < 2:
			return fmt.Sprintf("malformed close % x", g.p)
		}
		code := binary.BigEndian.Uint16(g.p)
		if len(g.p) > 2 {
			return fmt.Sprintf("close %d %q", code, g.p[2:])
		}
		return fmt.Sprintf("close %d", code)
	}
	return fmt.Sprintf("opcode %d %s", g.op, short(g.p))
}

// read returns the next server frame other than a keep-alive ping.
func (s *session) read() got {
	for {
		h, p, err := s.c.Read(time.Until(s.deadline))
		if err != nil {
			return got{err: err}
		}
		if h.OpCode == ws.OpPing {
			continue // the server's keep-alive: not part of any case
		}
		return s.unzip(h, p)
	}
}

// reply is the part of a protocol v1 reply the events look at.
type reply struct {
	Op   string `json:"op"`
	ID   *int64 `json:"id"`
	Code string `json:"code"`
}

func (e Event) matches(g got) bool {
	if g.err != nil {
		return false
	}
	switch e.Kind {
	case EvAck, EvError:
		var r reply
		if g.op != ws.OpText || json.Unmarshal(g.p, &r) != nil {
			return false
		}
		if e.Kind == EvAck {
			return r.Op == "ack" && r.ID != nil && *r.ID == e.ID
		}
		return r.Op == "error" && r.Code == e.Code
	case EvPong:
		return g.op == ws.OpPong && string(g.p) == string(e.Payload)
	case EvDeliver:
		return deliveryMatches(e, g)
	case EvClose:
		if g.op != ws.OpClose {
			return false
		}
		if e.CloseCode == 0 {
			return len(g.p) == 0
		}
		return len(g.p) >= 2 && int(binary.BigEndian.Uint16(g.p)) == e.CloseCode
	}
	return false
}

// expect reads the next frame and checks it against e. For a close, it
// then answers (if the client had not closed) and requires the TCP close.
func (s *session) expect(e Event) error {
	g := s.read()
	if !e.matches(g) {
		return fmt.Errorf("got %s, want %s", g, e)
	}
	if e.Kind != EvClose {
		return nil
	}
	s.closed = true
	if !s.sentClose {
		var echo []byte
		if len(g.p) >= 2 {
			echo = g.p[:2]
		}
		s.sentClose = true
		s.write(frame(ws.OpClose, echo)) // may fail: the server may be gone
	}
	after := s.read()
	switch {
	case after.err == nil:
		return fmt.Errorf("got %s after the close frame, want TCP close", after)
	case isConnEnd(after.err):
		return nil
	case isTimeout(after.err):
		return errors.New("close frame received, but the server did not end the TCP connection")
	}
	return fmt.Errorf("after the close frame: %v", after.err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnEnd reports whether err is the peer ending the TCP connection.
func isConnEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// short renders a payload for a message, truncated.
func short(p []byte) string {
	limit := 48
	odd := strings.ContainsFunc(string(p), func(r rune) bool { return r < 0x20 || r == utf8.RuneError })
	if odd {
		limit = 16 // quoted bytes take four times the room
	}
	s := string(p)
	if len(s) > limit {
		s = s[:limit]
	}
	if odd {
		s = strconv.Quote(s)
	}
	if len(p) > limit {
		s += "…(" + strconv.Itoa(len(p)) + " bytes)"
	}
	return s
}
