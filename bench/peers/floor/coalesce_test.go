package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/bench/peers/internal/peertest"
	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

// stoppedLoop is a server with one loop whose goroutine is NOT running, so
// a test decides when the loop flushes; its connections are socketpairs.
type stoppedLoop struct {
	s *server
	l *loop
}

func newStoppedLoop(t *testing.T, mode string) *stoppedLoop {
	t.Helper()
	lnfds, _, err := listenReusePort("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{mode: mode, maxPending: 8 << 20, topics: map[string]*topic{}}
	l, err := newLoop(s, lnfds[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.release)
	return &stoppedLoop{s: s, l: l}
}

// subscriber adds an upgraded connection subscribed to topic and returns
// it with the other end of its socketpair (blocking, for the test to read).
func (sl *stoppedLoop) subscriber(t *testing.T, topic string) (*conn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	c := sl.l.add(fds[0])
	if c == nil {
		t.Fatal("add failed")
	}
	c.handshaking, c.upgraded = false, true
	sl.s.subscribe(c, []string{topic})
	peer := os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { _ = peer.Close() })
	return c, peer
}

// wakes reads and resets the loop's eventfd counter (0: not woken).
func (sl *stoppedLoop) wakes(t *testing.T) uint64 {
	t.Helper()
	var b [8]byte
	n, err := unix.Read(sl.l.wakefd, b[:])
	if err == unix.EAGAIN {
		return 0
	}
	if err != nil || n != 8 {
		t.Fatalf("eventfd read: %d, %v", n, err)
	}
	return binary.NativeEndian.Uint64(b[:])
}

func (c *conn) writeCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// frames is what n publishes of data to topic, seqs from+1.., put on the wire.
func frames(topic string, from, n int, data []byte) []byte {
	var b []byte
	for seq := uint64(from + 1); seq <= uint64(from+n); seq++ {
		b = appendFrame(b, opText, peerutil.MessageLen(topic, seq, data))
		b = peerutil.AppendMessage(b, topic, seq, data)
	}
	return b
}

// TestCoalesceOneWritePerBatch: publishes queued while the loop does not
// run wake it once and reach each subscriber in ONE write carrying them
// all, byte-exact and in order; in write-per-delivery mode the same
// publishes take one write each and no wake.
func TestCoalesceOneWritePerBatch(t *testing.T) {
	const n, subs = 50, 3
	data := []byte(`{"px":1.5}`)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			sl := newStoppedLoop(t, mode)
			var conns []*conn
			var peers []*os.File
			for i := 0; i < subs; i++ {
				c, p := sl.subscriber(t, "co")
				conns, peers = append(conns, c), append(peers, p)
			}
			for batch := 0; batch < 2; batch++ {
				for i := 0; i < n; i++ {
					if _, got, _ := sl.s.Publish("co", data); got != subs {
						t.Fatalf("recipients %d", got)
					}
				}
				wantWrites, wantWakes := uint64(n*(batch+1)), uint64(0)
				if mode == modeCoalesce {
					if w := conns[0].writeCount(); w != uint64(batch) {
						t.Fatalf("batch %d: %d writes before the loop ran, want %d", batch, w, batch)
					}
					wantWrites, wantWakes = uint64(batch+1), 1
				}
				if w := sl.wakes(t); w != wantWakes {
					t.Fatalf("batch %d: eventfd counter %d, want %d", batch, w, wantWakes)
				}
				sl.l.flushDirty() // what the loop does when woken
				want := frames("co", batch*n, n, data)
				for i, c := range conns {
					if w := c.writeCount(); w != wantWrites {
						t.Fatalf("batch %d conn %d: %d writes for %d deliveries, want %d", batch, i, w, n*(batch+1), wantWrites)
					}
					got := make([]byte, len(want))
					if _, err := io.ReadFull(peers[i], got); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("batch %d conn %d: the bytes differ from %d frames in seq order", batch, i, n)
					}
				}
			}
		})
	}
}

// TestCoalesceSteadyStateAllocs: once the pending buffers and the dirty
// list have grown, a batch of publishes to several subscribers and the
// loop's flush of it allocate nothing.
func TestCoalesceSteadyStateAllocs(t *testing.T) {
	const subs, batch = 8, 10
	sl := newStoppedLoop(t, modeCoalesce)
	var wg sync.WaitGroup
	for i := 0; i < subs; i++ {
		_, p := sl.subscriber(t, "alloc")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, p)
		}()
	}
	data := []byte(`{"price":101.25,"qty":7}`)
	round := func() {
		for i := 0; i < batch; i++ {
			if _, n, _ := sl.s.Publish("alloc", data); n != subs {
				panic(fmt.Sprintf("recipients %d", n))
			}
		}
		sl.l.flushDirty()
	}
	round()
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Fatalf("%.1f allocations per batch of %d publishes to %d subscribers plus its flush, want 0", allocs, batch, subs)
	}
	sl.l.release()
	wg.Wait()
}

// TestCoalesceConcurrentPublishers: one publisher per topic, flat out,
// against a running coalescing server; every subscriber gets every message
// of its topics exactly once, in seq order per topic, with the right data.
func TestCoalesceConcurrentPublishers(t *testing.T) {
	s, p := startServer(t, "-loops", "2")
	const topics, clients, msgs = 3, 6, 400
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		c := p.MustDial(t, "cc0,cc1,cc2")
		go func() {
			next := map[string]uint64{}
			for k := 0; k < topics*msgs; k++ {
				_ = c.SetReadDeadline(time.Now().Add(peertest.Timeout))
				_, b, err := c.ReadMessage()
				if err != nil {
					errs <- err
					return
				}
				var d peertest.Delivery
				if err := json.Unmarshal(b, &d); err != nil {
					errs <- err
					return
				}
				next[d.Topic]++
				if d.Seq != next[d.Topic] || string(d.Data) != strconv.FormatUint(d.Seq, 10) {
					errs <- fmt.Errorf("%s: seq %d data %s, want seq %d", d.Topic, d.Seq, d.Data, next[d.Topic])
					return
				}
			}
			errs <- nil
		}()
	}
	var wg sync.WaitGroup
	for ti := 0; ti < topics; ti++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "cc" + strconv.Itoa(ti)
			for i := 1; i <= msgs; i++ {
				if seq, n, _ := s.Publish(name, []byte(strconv.Itoa(i))); seq != uint64(i) || n != clients {
					errs <- fmt.Errorf("publish %s %d: seq %d recipients %d", name, i, seq, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// parkWrites replaces the flushes' write(2) with one that reports each call
// on entered (the first 16 not yet received) and then waits for release before writing (or, with partial,
// writes only that many bytes of it). It restores write on cleanup.
func parkWrites(t *testing.T, partial int) (entered chan []byte, release chan struct{}) {
	t.Helper()
	entered, release = make(chan []byte, 16), make(chan struct{}, 16)
	flushWrite = func(fd int, b []byte) (int, error) {
		select {
		case entered <- b:
		default: // nobody is looking at that many writes
		}
		<-release
		if partial > 0 && partial < len(b) {
			b = b[:partial]
		}
		return write(fd, b)
	}
	t.Cleanup(func() { flushWrite = write })
	return entered, release
}

// TestCoalescePublishDuringWrite parks the loop inside its write(2) to a
// subscriber and publishes to that subscriber meanwhile: the publish must
// complete while the write is still in progress (publishers never wait for
// a write syscall), and the subscriber must then get everything, in order.
func TestCoalescePublishDuringWrite(t *testing.T) {
	sl := newStoppedLoop(t, modeCoalesce)
	c, peer := sl.subscriber(t, "pw")
	entered, release := parkWrites(t, 0)
	data := []byte(`"x"`)
	sl.s.Publish("pw", data)
	flushed := make(chan struct{})
	go func() {
		sl.l.flushDirty()
		close(flushed)
	}()
	<-entered // the loop is inside write(2)
	published := make(chan int, 1)
	go func() {
		_, n, _ := sl.s.Publish("pw", data)
		published <- n
	}()
	select {
	case n := <-published:
		if n != 1 {
			t.Fatalf("recipients %d during the write", n)
		}
	case <-time.After(peertest.Timeout):
		release <- struct{}{} // unpark, so the cleanup can take c.mu
		<-flushed
		t.Fatal("a publish to a connection waited for the loop's write(2) to that connection")
	}
	release <- struct{}{}
	<-flushed
	if w := c.writeCount(); w != 1 {
		t.Fatalf("%d writes after the first round, want 1", w)
	}
	// The second publish was listed during the write; the next round writes it.
	close(release)
	sl.l.flushDirty()
	if b := <-entered; !bytes.Equal(b, frames("pw", 1, 1, data)) {
		t.Fatalf("second write %q", b)
	}
	want := frames("pw", 0, 2, data)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestCoalescePartialWrite: when a write takes only part of the buffer, the
// rest is written first by the EPOLLOUT flush, ahead of anything published
// meanwhile, and -max-pending counts the unsent rest of the write buffer.
func TestCoalescePartialWrite(t *testing.T) {
	sl := newStoppedLoop(t, modeCoalesce)
	c, peer := sl.subscriber(t, "pp")
	entered, release := parkWrites(t, 7)
	close(release) // never park, just write 7 bytes per call
	data := []byte(`{"k":"0123456789"}`)
	const first = 3
	for i := 0; i < first; i++ {
		sl.s.Publish("pp", data)
	}
	sl.l.flushDirty()
	if b := <-entered; !bytes.Equal(b, frames("pp", 0, first, data)) {
		t.Fatalf("first write %q", b)
	}
	c.mu.Lock()
	armed, queued := c.outArmed, c.queued()
	c.mu.Unlock()
	total := len(frames("pp", 0, first, data))
	if !armed || queued != total-7 {
		t.Fatalf("after a 7-byte write: outArmed %v, queued %d, want true, %d", armed, queued, total-7)
	}
	// The cap counts the write buffer's unsent rest: one more frame fits
	// only if rest+frame <= max-pending.
	frame := len(frames("pp", first, 1, data))
	sl.s.maxPending = queued + frame
	if _, n, _ := sl.s.Publish("pp", data); n != 1 {
		t.Fatal("a frame that fits under -max-pending was dropped")
	}
	if _, n, _ := sl.s.Publish("pp", data); n != 0 || sl.s.drops.Load() != 1 {
		t.Fatalf("past -max-pending: recipients %d drops %d, want 0, 1", n, sl.s.drops.Load())
	}
	sl.s.maxPending = 8 << 20
	const more = 2
	for i := 0; i < more; i++ {
		sl.s.Publish("pp", data)
	}
	sl.l.flushDirty() // armed: left to EPOLLOUT, no write
	if w := c.writeCount(); w != 1 {
		t.Fatalf("%d writes; a dirty flush wrote to an armed connection", w)
	}
	// Seqs first+1 and first+3.. were queued, first+2 dropped.
	want := append(frames("pp", 0, first+1, data), frames("pp", first+2, more, data)...)
	got := make([]byte, 0, len(want))
	buf := make([]byte, len(want))
	for len(got) < len(want) {
		sl.l.event(c, unix.EPOLLOUT)
		n, err := peer.Read(buf[:min(len(buf), len(want)-len(got))])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes out of order or corrupted:\n got %q\nwant %q", got, want)
	}
	c.mu.Lock()
	armed, queued = c.outArmed, c.queued()
	c.mu.Unlock()
	if armed || queued != 0 {
		t.Fatalf("drained: outArmed %v queued %d", armed, queued)
	}
}

// TestCoalescePacing: with -pace, a publish that leaves a connection with
// more than that queued (its socket not full) does not return until the
// loop has ended a flush round; without pressure it returns at once.
func TestCoalescePacing(t *testing.T) {
	sl := newStoppedLoop(t, modeCoalesce)
	sl.s.loops = []*loop{sl.l}
	_, peer := sl.subscriber(t, "pace")
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	data := []byte(`"` + strings.Repeat("p", 100) + `"`)
	frame := len(frames("pace", 0, 1, data))
	sl.s.pace = 2*frame + 1
	for i := 0; i < 2; i++ { // up to the threshold: no wait
		sl.s.Publish("pace", data)
	}
	done := make(chan struct{})
	go func() {
		sl.s.Publish("pace", data) // past it
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a publish past -pace returned before the loop's round")
	case <-time.After(100 * time.Millisecond):
	}
	sl.l.flushDirty()
	select {
	case <-done:
	case <-time.After(peertest.Timeout):
		t.Fatal("the paced publish did not return after the round")
	}
	if p := sl.s.paced.Load(); p != 1 {
		t.Fatalf("%d publishes counted as paced, want 1", p)
	}
}
