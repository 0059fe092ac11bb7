package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/wsconn"
)

// TestBroadcastManyConnections: 5,000 real connections on one topic receive
// 100 publishes, each message exactly once and in seq order. Clients are read
// by a few goroutines (not one each) to stay inside the race detector's
// goroutine limit.
func TestBroadcastManyConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 connections")
	}
	const conns, msgs = 5000, 100
	s := startServer(t, Config{})
	clients := make([]*wstest.Client, conns)
	var dialErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < conns; i += 8 {
				c, err := wstest.Dial(s.WSAddr().String(), "/ws?topics=all", nil)
				if err != nil {
					mu.Lock()
					dialErr = err
					mu.Unlock()
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	if dialErr != nil {
		t.Fatal(dialErr)
	}
	for i := 1; i <= msgs; i++ {
		r := publish(t, s, "all", fmt.Sprintf(`{"n":%d}`, i))
		if r.Seq != uint64(i) || r.Recipients != conns {
			t.Fatalf("publish %d = %+v", i, r)
		}
	}
	errs := make(chan error, conns)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < conns; i += 8 {
				if err := expectSeqs(clients[i], "all", 1, msgs); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if d := st.Dropped(); d != 0 {
		t.Fatalf("dropped = %d, want 0", d)
	}
	testutil.CheckFor(t, readWait, 10*time.Millisecond, func() error {
		if got := st.Delivered.Load(); got != conns*msgs {
			return fmt.Errorf("delivered = %d, want %d", got, conns*msgs)
		}
		return nil
	})
}

// expectSeqs reads deliveries from..to of topic, exactly once and in order.
func expectSeqs(c *wstest.Client, topic string, from, to uint64) error {
	want := from
	for want <= to {
		s, err := c.ReadText(readWait)
		if err != nil {
			return fmt.Errorf("waiting for seq %d: %w", want, err)
		}
		var d struct {
			Topic string
			Seq   uint64
			Data  struct{ N uint64 }
		}
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			return fmt.Errorf("delivery %q: %w", s, err)
		}
		if d.Topic != topic || d.Seq != want || d.Data.N != want {
			return fmt.Errorf("got %s, want seq %d", s, want)
		}
		want++
	}
	return nil
}

// TestNeverReadingClient: one client stops reading while others read
// everything; the slow one's losses are exactly what the policy counted.
func TestNeverReadingClient(t *testing.T) {
	const readers, msgs = 5, 400
	payload := strings.Repeat("p", 32<<10) // 32 KiB: the kernel buffers fill fast
	for _, policy := range []wsconn.SlowPolicy{wsconn.DropOldest, wsconn.DropNewest, wsconn.CloseSlow} {
		t.Run(policy.String(), func(t *testing.T) {
			// The slow client stops reading for as long as the publishes
			// take, which on a loaded machine is longer than the default
			// write timeout; that timeout would close it for a different
			// reason than the one under test (TestWriteTimeout covers it).
			s := startServer(t, Config{Conn: wsconn.Config{SendQueue: 16, SlowPolicy: policy, MaxMessage: 1 << 20,
				WriteTimeout: 10 * time.Minute}})
			slow := dial(t, s, "/ws?topics=flood")
			var rs []*wstest.Client
			for range readers {
				rs = append(rs, dial(t, s, "/ws?topics=flood"))
			}
			var wg sync.WaitGroup
			errs := make(chan error, readers)
			for _, c := range rs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := expectPayloads(c, msgs); err != nil {
						errs <- err
					}
				}()
			}
			for i := 1; i <= msgs; i++ {
				status, body := postPublish(t, s, fmt.Sprintf(`{"topic":"flood","data":{"n":%d,"p":%q}}`, i, payload))
				if status != http.StatusOK {
					t.Fatalf("publish: %d %s", status, body)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("reader: %v", err)
			}
			st := s.Stats()
			if policy == wsconn.CloseSlow {
				cf, err := slow.ExpectClose(30 * time.Second)
				if err != nil || cf.Code != 1008 || cf.Reason != "slow consumer" {
					t.Fatalf("slow client close = %v, %v; want 1008 slow consumer", cf, err)
				}
				if st.SlowClosed.Load() != 1 || st.DroppedClose.Load() == 0 {
					t.Fatalf("slow closes = %d, dropped by close = %d", st.SlowClosed.Load(), st.DroppedClose.Load())
				}
				return
			}
			// Now drain the slow client: what it gets plus what was dropped
			// for it is every message.
			got := 0
			last := uint64(0)
			dropped := func() int64 { return st.DroppedOldest.Load() + st.DroppedNewest.Load() }
			for int64(got)+dropped() < msgs {
				m, err := slow.ReadText(30 * time.Second)
				if err != nil {
					t.Fatalf("slow client after %d messages (%d dropped): %v", got, dropped(), err)
				}
				var d struct{ Seq uint64 }
				json.Unmarshal([]byte(m), &d)
				if d.Seq <= last {
					t.Fatalf("slow client seq %d after %d", d.Seq, last)
				}
				last = d.Seq
				got++
			}
			if dropped() == 0 {
				t.Fatalf("nothing dropped: the test did not fill the queue")
			}
			if int64(got)+dropped() != msgs {
				t.Fatalf("received %d + dropped %d != %d", got, dropped(), msgs)
			}
			if policy == wsconn.DropOldest && last != msgs {
				t.Fatalf("drop-oldest: last seq %d, want %d (newest kept)", last, msgs)
			}
			if policy == wsconn.DropNewest && st.DroppedOldest.Load() != 0 {
				t.Fatalf("drop-newest counted %d drop-oldest", st.DroppedOldest.Load())
			}
		})
	}
}

// expectPayloads reads n deliveries in seq order 1..n.
func expectPayloads(c *wstest.Client, n int) error {
	for want := uint64(1); want <= uint64(n); want++ {
		m, err := c.ReadText(30 * time.Second)
		if err != nil {
			return fmt.Errorf("waiting for %d: %w", want, err)
		}
		var d struct{ Seq uint64 }
		if err := json.Unmarshal([]byte(m), &d); err != nil || d.Seq != want {
			return fmt.Errorf("got seq %d (%v), want %d", d.Seq, err, want)
		}
	}
	return nil
}

// TestHalfFrameClientsHoldNoWorker: 1,000 clients each send half a frame and
// stall; with a pool of 4 workers a normal client is still served, and no
// worker is busy while they wait.
func TestHalfFrameClientsHoldNoWorker(t *testing.T) {
	const stalled = 1000
	s := startServer(t, Config{Conn: wsconn.Config{Workers: 4}})
	half := F{Op: ws.OpText, Payload: []byte(`{"op":"subscribe","topics":["h"],"id":1}`)}.Encode()
	var cs []*wstest.Client
	for range stalled {
		c := dial(t, s, "/ws")
		if _, err := c.Conn.Write(half[:len(half)/2]); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	testutil.CheckFor(t, readWait, 10*time.Millisecond, func() error {
		if n := s.ws.WorkersBusy(); n != 0 {
			return fmt.Errorf("%d workers busy", n)
		}
		return nil
	})
	normal := dial(t, s, "/ws")
	if err := normal.WriteText(`{"op":"subscribe","topics":["h"],"id":2}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, normal); r.Op != "ack" || *r.ID != 2 {
		t.Fatalf("normal client reply = %+v", r)
	}
	// The stalled ones complete when the rest arrives.
	for _, c := range cs[:10] {
		if _, err := c.Conn.Write(half[len(half)/2:]); err != nil {
			t.Fatal(err)
		}
		if r := readReply(t, c); r.Op != "ack" || *r.ID != 1 {
			t.Fatalf("stalled client reply = %+v", r)
		}
	}
}

// TestSlowHandshakeHoldsNothing: clients that send half an upgrade request
// hold neither the accept loop nor a worker.
func TestSlowHandshakeHoldsNothing(t *testing.T) {
	s := startServer(t, Config{Conn: wsconn.Config{Workers: 2}})
	for range 200 {
		w := bufio.NewWriter(dialRaw(t, s))
		w.WriteString("GET /ws HTTP/1.1\r\nHost: x\r\n")
		w.Flush()
	}
	normal := dial(t, s, "/ws")
	if err := normal.WriteText(`{"op":"subscribe","topics":["k"],"id":3}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, normal); r.Op != "ack" {
		t.Fatalf("reply = %+v", r)
	}
}

// TestWriterModes: both writer lifetimes deliver everything in order, and the
// on-demand one leaves no goroutine behind on an idle connection.
func TestWriterModes(t *testing.T) {
	const conns, msgs = 50, 30
	for _, mode := range []wsconn.WriterMode{wsconn.WriterOnDemand, wsconn.WriterPersistent} {
		t.Run(mode.String(), func(t *testing.T) {
			s := startServer(t, Config{Conn: wsconn.Config{Writer: mode}})
			var cs []*wstest.Client
			for range conns {
				cs = append(cs, dial(t, s, "/ws?topics=w"))
			}
			for i := 1; i <= msgs; i++ {
				publish(t, s, "w", fmt.Sprintf(`{"n":%d}`, i))
			}
			for i, c := range cs {
				if err := expectSeqs(c, "w", 1, msgs); err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
			}
			want := int64(0)
			if mode == wsconn.WriterPersistent {
				want = conns
			}
			testutil.CheckFor(t, readWait, 10*time.Millisecond, func() error {
				if n := s.Stats().Writers.Load(); n != want {
					return fmt.Errorf("writer goroutines = %d, want %d", n, want)
				}
				return nil
			})
		})
	}
}
