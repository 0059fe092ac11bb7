package main

import (
	"sync"

	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

// hub keeps per-topic subscriber sets. Lock order: topic.mu before sub.mu;
// hub.mu is only held to look topics up.
type hub struct {
	mu     sync.RWMutex
	topics map[string]*topic
}

type topic struct {
	name string
	mu   sync.Mutex
	seq  uint64
	subs map[*sub]struct{}
	buf  []byte // message scratch, reused under mu
}

// sub is one subscriber. ws is nil until the upgrade completes; until then
// deliveries queue in backlog.
type sub struct {
	topics []*topic // fixed at creation

	mu      sync.Mutex
	ws      *websocket.Conn
	backlog [][]byte
	dead    bool
}

func newHub() *hub { return &hub{topics: make(map[string]*topic)} }

func (h *hub) topic(name string) *topic {
	h.mu.RLock()
	t := h.topics[name]
	h.mu.RUnlock()
	if t != nil {
		return t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t = h.topics[name]; t == nil {
		t = &topic{name: name, subs: make(map[*sub]struct{})}
		h.topics[name] = t
	}
	return t
}

func (h *hub) subscribe(names []string) *sub {
	sb := &sub{topics: make([]*topic, len(names))}
	for i, n := range names {
		sb.topics[i] = h.topic(n)
	}
	for _, t := range sb.topics {
		t.mu.Lock()
		t.subs[sb] = struct{}{}
		t.mu.Unlock()
	}
	return sb
}

// unsubscribe marks sb dead and removes it from its topics (idempotent).
func (h *hub) unsubscribe(sb *sub) {
	sb.mu.Lock()
	sb.dead = true
	sb.backlog = nil
	sb.mu.Unlock()
	for _, t := range sb.topics {
		t.mu.Lock()
		delete(t.subs, sb)
		t.mu.Unlock()
	}
}

// Publish implements peerutil.Publisher. The topic mutex is held across
// seq assignment and the whole fan-out, so per-topic order is seq order.
func (h *hub) Publish(name string, data []byte) (uint64, int, error) {
	t := h.topic(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	if len(t.subs) == 0 {
		return t.seq, 0, nil
	}
	t.buf = peerutil.AppendMessage(t.buf[:0], name, t.seq, data)
	n := 0
	for sb := range t.subs {
		if sb.deliver(t.buf) {
			n++
		} else {
			// Closed before OnClose could find it (see attach); forget it
			// here. Deleting during range is allowed.
			delete(t.subs, sb)
		}
	}
	return t.seq, n, nil
}

// deliver writes msg to the connection, or parks a copy while the upgrade
// is in flight. It reports false once the subscriber is gone.
func (sb *sub) deliver(msg []byte) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch {
	case sb.dead:
		return false
	case sb.ws == nil:
		sb.backlog = append(sb.backlog, append([]byte(nil), msg...))
		return true
	}
	if err := sb.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		sb.dead = true
		return false
	}
	return true
}

// attach binds the upgraded connection and flushes the backlog. If the
// connection was closed before SetSession ran, OnClose saw no session; the
// first write here or in Publish then fails and the subscriber is dropped.
func (sb *sub) attach(ws *websocket.Conn) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.dead {
		return
	}
	sb.ws = ws
	for _, m := range sb.backlog {
		if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
			sb.dead = true
			break
		}
	}
	sb.backlog = nil
}
