package wsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/netpoll"
)

// readBuf is each worker's read buffer size.
const readBuf = 64 << 10

// writeTimeout bounds the close written on a connection that is not read.
const writeTimeout = 5 * time.Second

// readsPerEvent bounds the reads one worker does in a row for one
// connection before queueing it behind the others (when the queue has
// room), so one busy connection cannot starve them.
const readsPerEvent = 4

// Config configures an Engine. The zero value works for a single topic-less
// run; Topics must name every topic that connections subscribe to.
type Config struct {
	// Topics are the topic names; connections refer to them by index.
	Topics []string
	// Pollers is the netpoll group size; 0 means 1.
	Pollers int
	// Workers is the number of read workers; 0 means GOMAXPROCS.
	Workers int
	// TrackMessages is the number of per-topic message slots in the table
	// of per-message latencies (seqs 1..TrackMessages); 0 tracks none.
	TrackMessages int
	// MaxMessage bounds a server message; 0 means DefaultMaxMessage.
	MaxMessage int
}

// ErrStopped is returned by Add after Stop.
var ErrStopped = errors.New("wsclient: engine stopped")

// Engine holds many client connections: sockets on a netpoll group, reads
// on a fixed set of workers. Create with New, add connections with Connect
// or Add, and call Stop once, then Result.
type Engine struct {
	cfg   Config
	group *netpoll.Group
	work  chan *Conn
	wg    sync.WaitGroup
	wks   []*worker
	msgs  *check.MsgTable

	stopMu  sync.RWMutex // held shared while adding, exclusively by Stop
	stopped bool         // guarded by stopMu

	connMu sync.Mutex
	conns  []*Conn // every connection ever added; guarded by connMu

	lostMu sync.Mutex
	lost   stats.Causes // connections that ended on their own, by cause

	up         atomic.Int64
	deliveries atomic.Int64
	lostN      atomic.Int64
	restBytes  atomic.Int64 // frame bytes that came with the 101s
}

// worker is one read goroutine's private state; read after Stop only.
type worker struct {
	e       *Engine
	buf     []byte
	wbuf    []byte
	lat     *stats.Hist
	other   int64 // non-delivery messages (acks, errors, anything unparsed)
	unknown int64 // deliveries on a topic the connection did not subscribe to
	pings   int64
	lastNs  int64 // receive time of the latest delivery
	wire    int64 // bytes read from the sockets
	msg     int64 // bytes of data messages (inflated)
	c       *Conn // the connection being served
}

// New starts the engine's pollers and workers.
func New(cfg Config) (*Engine, error) {
	if cfg.Pollers <= 0 {
		cfg.Pollers = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	g, err := netpoll.NewGroup(cfg.Pollers)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:   cfg,
		group: g,
		work:  make(chan *Conn, 4096),
		msgs:  check.NewMsgTable(len(cfg.Topics), cfg.TrackMessages),
		lost:  stats.Causes{},
	}
	for i := 0; i < cfg.Workers; i++ {
		w := &worker{e: e, buf: make([]byte, readBuf), lat: stats.NewHist()}
		e.wks = append(e.wks, w)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for c := range e.work {
				w.serve(c)
			}
		}()
	}
	return e, nil
}

// Target returns the upgrade request target subscribing to the topics.
func (e *Engine) Target(topics []int) string {
	if len(topics) == 0 {
		return "/ws"
	}
	var b strings.Builder
	b.WriteString("/ws?topics=")
	for i, t := range topics {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.cfg.Topics[t])
	}
	return b.String()
}

// Connect dials and upgrades one connection subscribed to topics and adds
// it (reading it when read is set; its messages compressed when d asked
// for compression, which a successful dial means was negotiated). It
// returns the handshake time: from the start of the dial until the 101 was
// verified.
func (e *Engine) Connect(ctx context.Context, d *Dialer, topics []int, read bool) (*Conn, time.Duration, error) {
	start := time.Now()
	nc, rest, err := d.Dial(ctx, e.Target(topics))
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	c, err := e.add(nc, rest, topics, read, d.Compression)
	if err != nil {
		nc.Close()
		return nil, took, err
	}
	return c, took, nil
}

// Conn is one client connection held by an Engine. A reading connection
// owns a raw descriptor (fd) that only the engine's epoll watches; one
// that is never read keeps its net.TCPConn (nc).
type Conn struct {
	e      *Engine
	nc     *net.TCPConn    // nil for a reading connection
	fd     int             // a reading connection's own descriptor
	poller *netpoll.Poller // nil for a connection that is not read
	topics []int

	mu     sync.Mutex // serialises the workers that serve this connection
	closed bool       // guarded by mu
	parser Parser     // guarded by mu
	seqs   []check.Seq
}

// Add takes over an upgraded connection that negotiated no extension.
// rest are bytes read past the upgrade response. With read false the
// socket is never read (a client that stopped reading), rest is dropped,
// and the connection only counts as up.
func (e *Engine) Add(nc *net.TCPConn, rest []byte, topics []int, read bool) (*Conn, error) {
	return e.add(nc, rest, topics, read, false)
}

// add is Add for a connection that negotiated permessage-deflate when
// deflate is set.
func (e *Engine) add(nc *net.TCPConn, rest []byte, topics []int, read, deflate bool) (*Conn, error) {
	e.stopMu.RLock()
	defer e.stopMu.RUnlock()
	if e.stopped {
		return nil, ErrStopped
	}
	c := &Conn{e: e, nc: nc, topics: topics}
	c.parser.MaxMessage, c.parser.Deflate = e.cfg.MaxMessage, deflate
	if read {
		e.restBytes.Add(int64(len(rest)))
		fd, err := own(nc)
		if err != nil {
			return nil, err
		}
		c.nc, c.fd = nil, fd
		c.seqs = make([]check.Seq, len(topics))
		c.parser.pend = rest
		// Register under mu: no worker may serve c before it is complete.
		c.mu.Lock()
		p, err := e.group.AddEdge(fd, c)
		if err != nil {
			c.mu.Unlock()
			unix.Close(fd)
			return nil, err
		}
		c.poller = p
		c.mu.Unlock()
		if len(rest) > 0 {
			e.work <- c // parse what came with the 101 even if nothing follows
		}
	}
	e.connMu.Lock()
	e.conns = append(e.conns, c)
	e.connMu.Unlock()
	e.up.Add(1)
	return c, nil
}

// own takes a connection's socket out of Go's runtime poller, so that a
// million of them are not watched by two epolls (each delivery waking
// both) and a pong is one write(2) with no deadline timer: it duplicates
// nc's descriptor (non-blocking, as the runtime set it; close-on-exec)
// and closes nc. The caller owns the returned descriptor.
func own(nc *net.TCPConn) (int, error) {
	rc, err := nc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	nc.Close()
	return fd, nil
}

// errWouldBlock is a control frame the socket could not take at once: an
// idle client's send buffer is empty, so it means a broken connection.
var errWouldBlock = errors.New("wsclient: control frame would block")

// writeControl writes a whole control frame on a reading connection's
// descriptor without waiting.
func (c *Conn) writeControl(b []byte) error {
	for {
		n, err := unix.Write(c.fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return errWouldBlock
		case err != nil:
			return err
		case n < len(b):
			b = b[n:]
			continue
		}
		return nil
	}
}

// HandleEvent implements netpoll.Handler: it hands the connection to a
// worker. It runs on the poller goroutine and blocks only while every
// worker is busy and the queue is full.
func (c *Conn) HandleEvent(int, netpoll.Event) { c.e.work <- c }

// serve reads what the socket has until it is drained (a short read or
// EAGAIN: the descriptor is edge-triggered, so there is no re-arming and
// the next event comes with new data), and parses it.
func (w *worker) serve(c *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	w.c = c
	defer func() { w.c = nil }()
	var err error
	if len(c.parser.pend) > 0 {
		err = c.parser.Feed(nil, w.onMessage)
	}
	for i := 1; err == nil; i++ {
		n, rerr := unix.Read(c.fd, w.buf)
		if n > 0 {
			w.wire += int64(n)
			err = c.parser.Feed(w.buf[:n], w.onMessage)
		}
		switch {
		case err != nil || rerr == unix.EAGAIN:
		case rerr == unix.EINTR:
			continue
		case rerr != nil:
			err = rerr
		case n == 0:
			err = io.EOF
		case n < len(w.buf):
			// Drained: data that comes later raises a new edge.
		case i%readsPerEvent == 0 && c.requeue():
			return // the next worker to take c reads on
		default:
			continue
		}
		break
	}
	if err != nil {
		c.closeLocked(err)
	}
}

// requeue puts c back behind the connections waiting for a worker, if the
// queue has room (never blocking: the caller is a worker).
func (c *Conn) requeue() bool {
	select {
	case c.e.work <- c:
		return true
	default:
		return false
	}
}

// errServerClose ends a connection the server closed with a close frame.
type errServerClose struct{ code int }

func (e errServerClose) Error() string { return "server close " + strconv.Itoa(e.code) }

// onMessage handles one message or control frame of w.c.
func (w *worker) onMessage(op ws.OpCode, p []byte) error {
	c := w.c
	switch op {
	case ws.OpText, ws.OpBinary:
		w.msg += int64(len(p))
		d, ok := check.ParseDelivery(p)
		if !ok {
			w.other++
			return nil
		}
		now := time.Now().UnixNano()
		w.lastNs = now
		k := -1
		for i, t := range c.topics {
			if string(d.Topic) == w.e.cfg.Topics[t] {
				k = i
				break
			}
		}
		if k < 0 {
			w.unknown++
			return nil
		}
		c.seqs[k].Observe(d.Seq)
		w.e.deliveries.Add(1)
		if d.SentNs > 0 {
			lat := now - d.SentNs
			w.lat.Record(time.Duration(lat))
			w.e.msgs.Observe(c.topics[k], d.Seq, lat)
		}
	case ws.OpPing:
		w.pings++
		w.wbuf = AppendClientFrame(w.wbuf[:0], ws.OpPong, p, MaskKey())
		if err := c.writeControl(w.wbuf); err != nil {
			return err
		}
	case ws.OpClose:
		code := 1005
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		w.wbuf = AppendClientFrame(w.wbuf[:0], ws.OpClose, p[:min(len(p), 2)], MaskKey())
		c.writeControl(w.wbuf) // the echo is a courtesy; the socket closes next either way
		return errServerClose{code}
	}
	return nil
}

// MaskKey returns a random masking key for a client frame.
func MaskKey() [4]byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return k
}

// closeLocked tears c down; cause nil means we closed it on purpose,
// anything else counts it as lost. c.mu must be held.
func (c *Conn) closeLocked(cause error) {
	if c.closed {
		return
	}
	c.closed = true
	if c.poller != nil {
		c.poller.Remove(c.fd)
		unix.Close(c.fd)
	} else {
		c.nc.Close()
	}
	c.e.up.Add(-1)
	if cause == nil {
		return
	}
	name := Classify(cause)
	var sc errServerClose
	if errors.As(cause, &sc) {
		name = "server_close_" + strconv.Itoa(sc.code)
	}
	c.e.lostN.Add(1)
	c.e.lostMu.Lock()
	c.e.lost.Add(name, 1)
	c.e.lostMu.Unlock()
}

// Close closes c from our side. With graceful set a close frame (1000) is
// sent first; its echo is not awaited.
func (c *Conn) Close(graceful bool) {
	if graceful {
		c.CloseWith(1000)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(nil)
}

// CloseWith sends a close frame with code, then closes c from our side;
// the echo is not awaited.
func (c *Conn) CloseWith(code uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	frame := AppendClientFrame(nil, ws.OpClose, []byte{byte(code >> 8), byte(code)}, MaskKey())
	if c.poller != nil {
		c.writeControl(frame)
	} else {
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		c.nc.Write(frame)
	}
	c.closeLocked(nil)
}

// CloseAll closes every connection from our side with a close frame of
// code (1001: going away), so that the server sees clean closes.
func (e *Engine) CloseAll(code uint16) {
	e.connMu.Lock()
	conns := e.conns
	e.connMu.Unlock()
	for _, c := range conns {
		c.CloseWith(code)
	}
}

// Up reports the connections currently open.
func (e *Engine) Up() int64 { return e.up.Load() }

// Deliveries reports the deliveries received so far.
func (e *Engine) Deliveries() int64 { return e.deliveries.Load() }

// Lost reports how many connections ended on their own so far.
func (e *Engine) Lost() int64 { return e.lostN.Load() }

// Stop stops the pollers and workers and closes every connection. It is
// idempotent; Add fails after it.
func (e *Engine) Stop() {
	e.stopMu.Lock()
	if e.stopped {
		e.stopMu.Unlock()
		return
	}
	e.stopped = true
	e.stopMu.Unlock()
	e.group.Close() // no HandleEvent after this returns
	close(e.work)
	e.wg.Wait()
	e.connMu.Lock()
	conns := e.conns
	e.connMu.Unlock()
	for _, c := range conns {
		c.Close(false)
	}
}

// Result is what an engine observed, finalised after Stop.
type Result struct {
	// Counts are the seq checks summed over reading connections.
	Counts check.Counts
	// Latency holds every delivery's latency (receive time − "t").
	Latency *stats.Hist
	// Msgs is the per-message table (max latency, delivery count).
	Msgs check.Msgs
	// Other counts messages that were not deliveries; Unknown deliveries on
	// a topic the connection had not subscribed to; Pings server pings.
	Other, Unknown, Pings int64
	// Lost counts connections that ended on their own, by cause.
	Lost stats.Causes
	// Readers is the number of reading connections.
	Readers int64
	// LastRecvNs is when the latest delivery arrived (Unix ns, 0: none).
	LastRecvNs int64
	// WireBytes counts the bytes the reading connections read from their
	// sockets after the upgrade responses: frames as sent, compressed or
	// not. MessageBytes counts their data messages' payloads, inflated;
	// Inflated the messages that came compressed.
	WireBytes int64
	// MessageBytes counts data message payload bytes, after inflating.
	MessageBytes int64
	// Inflated counts compressed messages.
	Inflated int64
}

// Result finalises the counts; expectLast[topic] is the last seq published
// to each topic (the tail beyond what a connection got counts as missing).
// Call it after Stop.
func (e *Engine) Result(expectLast []uint64) Result {
	r := Result{Latency: stats.NewHist(), Msgs: e.msgs.Export(), Lost: stats.Causes{}, WireBytes: e.restBytes.Load()}
	for _, w := range e.wks {
		r.Latency.Merge(w.lat)
		r.WireBytes += w.wire
		r.MessageBytes += w.msg
		r.Other += w.other
		r.Unknown += w.unknown
		r.Pings += w.pings
		r.LastRecvNs = max(r.LastRecvNs, w.lastNs)
	}
	e.connMu.Lock()
	defer e.connMu.Unlock()
	for _, c := range e.conns {
		if c.poller == nil {
			continue
		}
		r.Readers++
		c.mu.Lock()
		r.Inflated += c.parser.Inflated()
		for k, t := range c.topics {
			var want uint64
			if t < len(expectLast) {
				want = expectLast[t]
			}
			r.Counts.Add(&c.seqs[k], want)
		}
		c.mu.Unlock()
	}
	e.lostMu.Lock()
	r.Lost.Merge(e.lost)
	e.lostMu.Unlock()
	return r
}
