package netpoll_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wspush/wspush/netpoll"
)

// countHandler counts the EventTrigger calls per fd and remembers anything
// else it was handed.
type countHandler struct {
	mu    sync.Mutex
	count map[int]int
	other []netpoll.Event
	done  chan struct{} // closed when the total reaches want
	total int
	want  int
}

func (h *countHandler) HandleEvent(fd int, ev netpoll.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev != netpoll.EventTrigger {
		h.other = append(h.other, ev)
		return
	}
	h.count[fd]++
	if h.total++; h.total == h.want {
		close(h.done)
	}
}

// TestTrigger: every Trigger call, from many goroutines at once and for
// descriptors that were never registered, reaches its handler exactly once,
// on the poller, as EventTrigger.
func TestTrigger(t *testing.T) {
	const goroutines, each = 8, 500
	p := startPoller(t)
	h := &countHandler{count: make(map[int]int), done: make(chan struct{}), want: goroutines * each}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := p.Trigger(g*each+i, h); err != nil {
					t.Errorf("Trigger: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-h.done:
	case <-time.After(waitTotal):
		h.mu.Lock()
		t.Fatalf("%d of %d triggers delivered", h.total, h.want)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for fd := range goroutines * each {
		if n := h.count[fd]; n != 1 {
			t.Fatalf("fd %d triggered %d times, want 1", fd, n)
		}
	}
	if len(h.other) != 0 {
		t.Fatalf("unexpected events %v", h.other)
	}
}

// TestTriggerAfterClose: a closed poller refuses Trigger.
func TestTriggerAfterClose(t *testing.T) {
	p, err := netpoll.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Trigger(1, newRecHandler()); !errors.Is(err, netpoll.ErrClosed) {
		t.Fatalf("Trigger after Close = %v, want ErrClosed", err)
	}
}
