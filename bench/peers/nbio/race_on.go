//go:build race

package main

import (
	"net"
	"sync"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// nbhttp accepts on a std listener goroutine and hands each connection to
// a poller goroutine through epoll_ctl, an ordering the race detector
// cannot see, so it reports the poller's first read of the accepted
// connection (its remote address) as a race. Under -race only, make the
// hand-off visible: whoever hands a connection to nbio releases a mutex
// first (nbhttp's OnOpen runs just before its epoll ADD; awaitPollers
// calls raceRelease itself) and every poller data callback acquires it
// before parsing. Normal builds compile none of this.
var handoff sync.Mutex

func raceRelease() {
	handoff.Lock()
	handoff.Unlock() //nolint:staticcheck // empty critical section: a happens-before edge
}

func raceHandoff(e *nbhttp.Engine) {
	e.OnOpen(func(net.Conn) { raceRelease() })
	e.OnData(func(c *nbio.Conn, data []byte) {
		// Acquire side, then what nbhttp.NewEngine installs.
		raceRelease()
		c.DataHandler()(c, data)
	})
}
