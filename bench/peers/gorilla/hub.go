package main

import (
	"context"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

// hub owns all subscription state and every topic's seq; it is the only
// goroutine that touches them, exactly like the chat example's hub.
type hub struct {
	subs map[string]map[*client]struct{}
	seq  map[string]uint64

	register   chan *client
	unregister chan *client
	publish    chan publishReq
	done       chan struct{} // closed when run returns

	drops atomic.Uint64
}

type publishReq struct {
	topic string
	data  []byte
	reply chan publishRes
}

type publishRes struct {
	seq        uint64
	recipients int
	err        error
}

func newHub() *hub {
	return &hub{
		subs:       make(map[string]map[*client]struct{}),
		seq:        make(map[string]uint64),
		register:   make(chan *client),
		unregister: make(chan *client),
		publish:    make(chan publishReq),
		done:       make(chan struct{}),
	}
}

// add registers c. Once the unbuffered send completes the hub handles the
// registration before it looks at any later publish, so a client that has
// seen its 101 is guaranteed to be subscribed.
func (h *hub) add(c *client) bool {
	select {
	case h.register <- c:
		return true
	case <-h.done:
		return false
	}
}

// remove unregisters c (idempotent).
func (h *hub) remove(c *client) {
	select {
	case h.unregister <- c:
	case <-h.done:
	}
}

// Publish implements peerutil.Publisher by round-tripping through the hub.
func (h *hub) Publish(topic string, data []byte) (uint64, int, error) {
	req := publishReq{topic: topic, data: data, reply: make(chan publishRes, 1)}
	select {
	case h.publish <- req:
	case <-h.done:
		return 0, 0, peerutil.ErrShuttingDown
	}
	res := <-req.reply
	return res.seq, res.recipients, res.err
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	for {
		select {
		case c := <-h.register:
			c.registered = true
			for _, t := range c.topics {
				m := h.subs[t]
				if m == nil {
					m = make(map[*client]struct{})
					h.subs[t] = m
				}
				m[c] = struct{}{}
			}
		case c := <-h.unregister:
			h.drop(c)
		case req := <-h.publish:
			req.reply <- h.fanout(req.topic, req.data)
		case <-ctx.Done():
			for _, m := range h.subs {
				for c := range m {
					h.drop(c)
				}
			}
			return
		}
	}
}

// drop removes c from every topic and closes its send channel.
func (h *hub) drop(c *client) {
	if !c.registered {
		return
	}
	c.registered = false
	for _, t := range c.topics {
		if m := h.subs[t]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(h.subs, t)
			}
		}
	}
	close(c.send)
}

// fanout takes the topic's next seq, frames the message once and offers it
// to every subscriber without blocking.
func (h *hub) fanout(topic string, data []byte) publishRes {
	seq := h.seq[topic] + 1
	h.seq[topic] = seq
	m := h.subs[topic]
	if len(m) == 0 {
		return publishRes{seq: seq}
	}
	body := peerutil.AppendMessage(make([]byte, 0, peerutil.MessageLen(topic, seq, data)), topic, seq, data)
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, body)
	if err != nil {
		return publishRes{seq: seq, err: err}
	}
	n := 0
	for c := range m {
		select {
		case c.send <- pm:
			n++
		default:
			h.drops.Add(1)
		}
	}
	return publishRes{seq: seq, recipients: n}
}
