package scenario

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/wsclient"
)

// rclient is one client of the recover scenario: a live session (positions,
// then deliveries) and, after it, a resumed one (since, then the missed
// deliveries). One goroutine reads each session.
type rclient struct {
	epoch string        // from the live session's positions
	last  atomic.Uint64 // the last seq read live
	live  atomic.Int64  // live deliveries out of line (not last+1)

	mu     sync.Mutex
	nc     *net.TCPConn // the open session; guarded by mu
	closed bool         // the session was closed on purpose; guarded by mu

	// The resumed session's findings, written by its goroutine only.
	gotSub    bool
	recovered bool
	cu        *catchup
	took      time.Duration // from the reconnect start until caught up (0: never)
	resumed   bool          // the resumed session's dial and upgrade succeeded
	err       error         // why the resumed session ended, unless caught up
}

// errStop ends a session's read loop.
var errStop = errors.New("scenario: session done")

// session dials target through d (dialed is called once it is up), then
// calls onMsg with every text message until it returns errStop, the
// connection fails, or deadline passes. Pings are answered. The connection
// stays open until close.
func (c *rclient) session(ctx context.Context, d *wsclient.Dialer, target string, deadline time.Time, dialed func(), onMsg func([]byte) error) error {
	nc, rest, err := d.Dial(ctx, target)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed { // closed before the dial ended
		c.mu.Unlock()
		nc.Close()
		return errStop
	}
	c.nc = nc
	c.mu.Unlock()
	dialed()
	nc.SetDeadline(deadline)
	var p wsclient.Parser
	handle := func(op ws.OpCode, payload []byte) error {
		switch op {
		case ws.OpText, ws.OpBinary:
			return onMsg(payload)
		case ws.OpPing:
			_, err := nc.Write(wsclient.AppendClientFrame(nil, ws.OpPong, payload, wsclient.MaskKey()))
			return err
		case ws.OpClose:
			return errors.New("scenario: the server closed the connection")
		}
		return nil
	}
	if err := p.Feed(rest, handle); err != nil {
		return err
	}
	buf := make([]byte, 16<<10)
	for i := 0; i < 1<<24; i++ {
		n, rerr := nc.Read(buf)
		if n > 0 {
			if err := p.Feed(buf[:n], handle); err != nil {
				return err
			}
		}
		if rerr != nil {
			return rerr
		}
	}
	return errors.New("scenario: too many reads")
}

// close ends the open session on purpose (or the next one, if it is
// still dialing).
func (c *rclient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil && !c.closed {
		c.nc.Close()
	}
	c.closed = true
}

// reopen readies c for its next session, once the previous one ended.
func (c *rclient) reopen() {
	c.mu.Lock()
	c.nc, c.closed = nil, false
	c.mu.Unlock()
}

// closedOnPurpose tells whether the session's end was asked for.
func (c *rclient) closedOnPurpose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// liveMsg is the live session's handler: the subscribed frame (epoch and
// starting seq of topic), then deliveries, which must follow on one by one.
// ready is called once the position is known.
func (c *rclient) liveMsg(topic string, ready func(error)) func([]byte) error {
	gotSub := false
	return func(b []byte) error {
		if !gotSub {
			s, ok := parseSubscribed(b)
			pos, has := s.Positions[topic]
			if !ok || !has {
				err := errors.New("scenario: first frame is not a subscribed frame with positions: " + string(b[:min(len(b), 200)]))
				ready(err)
				return err
			}
			gotSub = true
			c.epoch = pos.Epoch
			c.last.Store(pos.Seq)
			ready(nil)
			return nil
		}
		d, ok := check.ParseDelivery(b)
		if !ok || string(d.Topic) != topic {
			return nil
		}
		if d.Seq != c.last.Load()+1 {
			c.live.Add(1)
		}
		c.last.Store(max(c.last.Load(), d.Seq))
		return nil
	}
}

// resumeMsg is the resumed session's handler: the subscribed frame
// (recovered), then the missed deliveries into c.cu; it stops once all
// arrived, recording the time since start.
func (c *rclient) resumeMsg(topic string, start time.Time) func([]byte) error {
	return func(b []byte) error {
		if !c.gotSub {
			s, ok := parseSubscribed(b)
			if !ok {
				return errors.New("scenario: first frame on resuming is not a subscribed frame: " + string(b[:min(len(b), 200)]))
			}
			c.gotSub, c.recovered = true, s.Recovered[topic]
			if !c.recovered {
				return errStop // nothing will be recovered
			}
			return nil
		}
		d, ok := check.ParseDelivery(b)
		if !ok || string(d.Topic) != topic {
			return nil
		}
		if c.cu.observe(d.Seq) {
			c.took = time.Since(start)
			return errStop
		}
		return nil
	}
}
