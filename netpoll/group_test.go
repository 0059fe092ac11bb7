package netpoll_test

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wspush/wspush/netpoll"
)

// Group and concurrency tests.

func TestGroup(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		wantSize int
	}{
		{name: "one", n: 1, wantSize: 1},
		{name: "four", n: 4, wantSize: 4},
		{name: "default", n: 0, wantSize: max(1, runtime.GOMAXPROCS(0)/2)},
		{name: "negative_is_default", n: -1, wantSize: max(1, runtime.GOMAXPROCS(0)/2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := netpoll.NewGroup(tt.n)
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					g.Close()
				}
			}()
			if g.Size() != tt.wantSize {
				t.Fatalf("Size() = %d, want %d", g.Size(), tt.wantSize)
			}
			h := newRecHandler()
			// Two connections on every poller.
			owned := map[*netpoll.Poller][]*pair{}
			var all []*pair
			for i := range 2 * g.Size() {
				c := newPairOn(t, g.Size(), i%g.Size())
				p, err := g.Add(c.fd, h)
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if p != g.Poller(c.fd) {
					t.Fatalf("Add returned a poller other than Poller(fd)")
				}
				owned[p] = append(owned[p], c)
				all = append(all, c)
			}
			if len(owned) != g.Size() {
				t.Fatalf("%d connections landed on only %d of %d pollers", len(all), len(owned), g.Size())
			}
			if g.Len() != len(all) {
				t.Fatalf("Len() = %d, want %d", g.Len(), len(all))
			}
			for p, cs := range owned {
				if p.Len() != len(cs) {
					t.Errorf("poller holds %d fds, want %d", p.Len(), len(cs))
				}
			}
			if _, err := g.Add(all[0].fd, h); !errors.Is(err, netpoll.ErrRegistered) {
				t.Fatalf("second Group.Add = %v, want ErrRegistered", err)
			}
			// Every poller goroutine delivers events.
			seen := map[int]bool{}
			for _, c := range all {
				c.write(t, "ping")
			}
			for range all {
				e := h.next(t)
				if seen[e.fd] {
					t.Fatalf("fd %d reported twice without Rearm", e.fd)
				}
				seen[e.fd] = true
			}
			for _, c := range all {
				if !seen[c.fd] {
					t.Errorf("no event for fd %d", c.fd)
				}
			}
			// Rearm and Remove through the owning poller.
			if err := g.Poller(all[0].fd).Rearm(all[0].fd); err != nil {
				t.Fatal(err)
			}
			h.nextFor(t, all[0].fd)
			if err := g.Poller(all[0].fd).Remove(all[0].fd); err != nil {
				t.Fatal(err)
			}
			if g.Len() != len(all)-1 {
				t.Fatalf("Len() after Remove = %d, want %d", g.Len(), len(all)-1)
			}

			closed = true
			if err := g.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := g.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if g.Len() != 0 {
				t.Errorf("Len() after Close = %d", g.Len())
			}
			if _, err := g.Add(newPair(t).fd, h); !errors.Is(err, netpoll.ErrClosed) {
				t.Fatalf("Add after Close = %v, want ErrClosed", err)
			}
			// goleak in TestMain proves every poller goroutine is gone.
		})
	}
}

// TestConcurrentOps hammers Add, Rearm and Remove from many goroutines while
// data flows, for the race detector; each connection must keep getting
// events while registered.
func TestConcurrentOps(t *testing.T) {
	g, err := netpoll.NewGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	waitGroupRunning(t, g)
	const conns = 8
	h := &chanHandler{chans: map[int]chan netpoll.Event{}}
	pairs := make([]*pair, conns)
	for i := range pairs {
		pairs[i] = newPair(t)
		h.chans[pairs[i].fd] = make(chan netpoll.Event, 64)
	}
	var wg sync.WaitGroup
	for _, c := range pairs {
		wg.Go(func() {
			ch := h.chans[c.fd]
			for round := 0; round < 20; round++ {
				p, err := g.Add(c.fd, h)
				if err != nil {
					t.Errorf("Add: %v", err)
					return
				}
				for i := 0; i < 5; i++ {
					if _, err := c.client.Write([]byte("a")); err != nil {
						t.Error(err)
						return
					}
					select {
					case <-ch:
					case <-time.After(waitTotal):
						t.Errorf("fd %d: no event", c.fd)
						return
					}
					if _, err := c.server.Read(make([]byte, 16)); err != nil {
						t.Error(err)
						return
					}
					if err := p.Rearm(c.fd); err != nil {
						t.Errorf("Rearm: %v", err)
						return
					}
				}
				if err := p.Remove(c.fd); err != nil {
					t.Errorf("Remove: %v", err)
					return
				}
				// A late event may still be queued; drop it.
				for len(ch) > 0 {
					<-ch
				}
			}
		})
	}
	wg.Wait()
	if g.Len() != 0 {
		t.Errorf("Len() = %d after removing everything", g.Len())
	}
}

// chanHandler routes events to one channel per fd.
type chanHandler struct {
	chans map[int]chan netpoll.Event // read-only once polling starts
}

func (h *chanHandler) HandleEvent(fd int, ev netpoll.Event) {
	select {
	case h.chans[fd] <- ev:
	default:
	}
}
