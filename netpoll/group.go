package netpoll

import (
	"errors"
	"runtime"
	"sync"
)

// Group is a fixed set of pollers, each run by its own goroutine. A
// descriptor lives on one poller chosen by its number.
type Group struct {
	pollers []*Poller // immutable after NewGroup
	wg      sync.WaitGroup
	errs    chan error // Run errors, buffered len(pollers)
	once    sync.Once  // makes Close idempotent
	err     error      // Close's result; written once under once
}

// NewGroup creates n pollers and starts their goroutines. n <= 0 means
// max(1, GOMAXPROCS/2): the pollers only wake workers, so a few are enough.
func NewGroup(n int) (*Group, error) {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	g := &Group{errs: make(chan error, n)}
	for i := 0; i < n; i++ {
		p, err := NewPoller()
		if err != nil {
			g.Close()
			return nil, err
		}
		p.stride = n
		g.pollers = append(g.pollers, p)
	}
	for _, p := range g.pollers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := p.Run(); err != nil {
				g.errs <- err
			}
		}()
	}
	return g, nil
}

// Size reports the number of pollers.
func (g *Group) Size() int { return len(g.pollers) }

// Poller returns the poller that owns fd.
func (g *Group) Poller(fd int) *Poller {
	return g.pollers[fd%len(g.pollers)]
}

// Add registers fd with its poller and returns that poller, on which the
// caller later calls Rearm and Remove.
func (g *Group) Add(fd int, h Handler) (*Poller, error) {
	p := g.Poller(fd)
	if err := p.Add(fd, h); err != nil {
		return nil, err
	}
	return p, nil
}

// AddEdge registers fd edge-triggered (Poller.AddEdge) with its poller and
// returns that poller, on which the caller later calls Remove.
func (g *Group) AddEdge(fd int, h Handler) (*Poller, error) {
	p := g.Poller(fd)
	if err := p.AddEdge(fd, h); err != nil {
		return nil, err
	}
	return p, nil
}

// Len reports how many descriptors are registered across the group.
func (g *Group) Len() int {
	n := 0
	for _, p := range g.pollers {
		n += p.Len()
	}
	return n
}

// Close stops every poller and waits for their goroutines. It returns the
// errors that stopped any poller early, joined.
func (g *Group) Close() error {
	g.once.Do(func() {
		var errs []error
		for _, p := range g.pollers {
			if err := p.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		g.wg.Wait()
		close(g.errs)
		for err := range g.errs {
			errs = append(errs, err)
		}
		g.err = errors.Join(errs...)
	})
	return g.err
}
