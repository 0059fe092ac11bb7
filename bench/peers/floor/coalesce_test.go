package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
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
