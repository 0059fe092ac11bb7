package faults

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

// dial connects from source address 127.0.0.<src> (spreading ports over
// several addresses), optionally with a small receive buffer, and upgrades.
func dial(t *testing.T, addr string, src int, rcvbuf int, target string) *wstest.Client {
	t.Helper()
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))},
		Timeout:   10 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			if rcvbuf == 0 {
				return nil
			}
			var serr error
			c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			return serr
		},
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c, err := wstest.Upgrade(nc, target, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestNeverReadersFlooded: 1,000 clients that never read are flooded with
// 10,000 messages each while 5 readers read. The readers lose nothing, the
// slow ones' losses are counted as drops, and the server's RSS stays under a
// bound derived from --send-queue: each connection holds at most send-queue
// frames, so memory ≤ baseline + conns × send-queue × frame size + 64 MiB
// (runtime and pool slack).
func TestNeverReadersFlooded(t *testing.T) {
	if testing.Short() {
		t.Skip("10 million deliveries")
	}
	const (
		slow, readers, msgs = 1000, 5, 10000
		sendQueue           = 64
		payload             = 512
	)
	s := start(t, "--send-queue", fmt.Sprint(sendQueue))
	base := s.rss(t)
	for i := range slow {
		dial(t, s.ws, 2+i%8, 4096, "/ws?topics=flood")
	}
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		c := dial(t, s.ws, 20+i, 0, "/ws?topics=flood")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for want := uint64(1); want <= msgs; want++ {
				m, err := c.ReadText(60 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("reader waiting for %d: %w", want, err)
					return
				}
				var d struct{ Seq uint64 }
				if json.Unmarshal([]byte(m), &d); d.Seq != want {
					errs <- fmt.Errorf("reader got seq %d, want %d", d.Seq, want)
					return
				}
			}
		}()
	}
	bound := base + int64(slow*sendQueue*(payload+64)) + 64<<20
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if r := s.rss(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	data := fmt.Sprintf(`{"p":"%0*d"}`, payload-8, 0)
	var pubErr atomic.Value
	var pw sync.WaitGroup
	next := atomic.Int64{}
	for range 4 {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for next.Add(1) <= msgs {
				if err := s.publish("flood", data); err != nil {
					pubErr.Store(err)
					return
				}
			}
		}()
	}
	pw.Wait()
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err, _ := pubErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	dropped := s.metric(t, `wspush_messages_dropped_total{policy="drop-oldest"}`, false)
	if dropped == 0 {
		t.Fatal("no drops counted for 1,000 never-reading clients")
	}
	t.Logf("RSS baseline %d MiB, peak %d MiB, bound %d MiB; drops %.0f", base>>20, peak.Load()>>20, bound>>20, dropped)
	if peak.Load() > bound {
		t.Fatalf("RSS peaked at %d bytes, over the bound %d", peak.Load(), bound)
	}
}

// TestSIGTERMDuringBroadcast: what was queued before SIGTERM is delivered
// before each client's 1001, clients are closed in waves, and wspushd exits 0.
func TestSIGTERMDuringBroadcast(t *testing.T) {
	const clients, msgs = 200, 50
	s := start(t, "--drain-waves", "4", "--shutdown-timeout", "4s")
	var cs []*wstest.Client
	for i := range clients {
		cs = append(cs, dial(t, s.ws, 2+i%4, 0, "/ws?topics=b"))
	}
	for i := 1; i <= msgs; i++ {
		if err := s.publish("b", fmt.Sprintf(`{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	exit := make(chan int, 1)
	go func() { exit <- s.terminate(t, 10*time.Second) }()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	var first, last atomic.Int64
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for want := uint64(1); want <= msgs; want++ {
				m, err := c.ReadText(10 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("waiting for %d: %w", want, err)
					return
				}
				var d struct{ Seq uint64 }
				if json.Unmarshal([]byte(m), &d); d.Seq != want {
					errs <- fmt.Errorf("seq %d, want %d", d.Seq, want)
					return
				}
			}
			cf, err := c.ExpectClose(10 * time.Second)
			if err != nil || cf.Code != ws.StatusGoingAway {
				errs <- fmt.Errorf("close = %v, %v; want 1001", cf, err)
				return
			}
			now := time.Now().UnixNano()
			first.CompareAndSwap(0, now)
			for {
				f := first.Load()
				if now >= f || first.CompareAndSwap(f, now) {
					break
				}
			}
			for {
				l := last.Load()
				if now <= l || last.CompareAndSwap(l, now) {
					break
				}
			}
			c.Write(wstest.Frame{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1001, "")})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if code := <-exit; code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr.String())
	}
	// Four waves over the first half of 4 s: the closes are spread out.
	if spread := time.Duration(last.Load() - first.Load()); spread < 500*time.Millisecond {
		t.Fatalf("closes spread over %v: not in waves", spread)
	}
}

// TestChurnReturnsToBaseline: 50,000 connect/disconnect cycles — clean
// closes, resets, and resets in the middle of a frame — leave the server's
// open descriptors, goroutines and live heap back at their baseline.
func TestChurnReturnsToBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("50,000 cycles")
	}
	const cycles, workers = 50000, 16
	s := start(t)
	baseFDs := s.fds(t)
	baseG := s.metric(t, "go_goroutines", false)
	baseHeap := s.metric(t, "go_memstats_heap_alloc_bytes", true)
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	half := wstest.Frame{Op: ws.OpText, Payload: []byte(`{"op":"subscribe","topics":["c"],"id":1}`)}.Encode()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+w))}, Timeout: 5 * time.Second}
			for {
				i := next.Add(1)
				if i > cycles {
					return
				}
				nc, err := d.Dial("tcp", s.ws)
				if err != nil {
					failures.Add(1)
					continue
				}
				c, err := wstest.Upgrade(nc, "/ws?topics=c", nil)
				if err != nil {
					failures.Add(1)
					nc.Close()
					continue
				}
				tc := nc.(*net.TCPConn)
				switch i % 3 {
				case 0: // clean close handshake
					c.Write(wstest.Frame{Op: ws.OpClose, Payload: wstest.CloseFramePayload(1000, "")})
					c.ExpectClose(5 * time.Second)
				case 1: // reset
					tc.SetLinger(0)
				case 2: // reset mid-frame
					tc.Write(half[:len(half)/2])
					tc.SetLinger(0)
				}
				nc.Close()
			}
		}()
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d of %d cycles failed", f, cycles)
	}
	testutil.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		fds, g := s.fds(t), s.metric(t, "go_goroutines", false)
		heap := s.metric(t, "go_memstats_heap_alloc_bytes", true)
		if fds > baseFDs || g > baseG || heap > baseHeap+2<<20 {
			return fmt.Errorf("fds %d (base %d), goroutines %.0f (base %.0f), heap %.0f (base %.0f)", fds, baseFDs, g, baseG, heap, baseHeap)
		}
		return nil
	})
}
