package server

import (
	"encoding/json"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/protocol"
	"github.com/wspush/wspush/wsconn"
)

// Users. A connection whose token has a sub is subscribed from its upgrade
// on to that user's stream, protocol.UserStream(sub): a hub topic like any
// other (seq, epoch, history, recovery and the cluster come with it), whose
// deliveries say "user" instead of "topic". POST /api/publish {"user":..}
// publishes to it; POST /api/disconnect closes the user's connections: on
// the answering node at once, on the others through the control topic.

// controlTopic is the stream every node of a cluster listens to for
// requests about connections on any node (a user's disconnect). Its name is
// no topic's and no user's: '#' is in neither alphabet.
const controlTopic = "#control"

// Close of a connection ended by POST /api/disconnect; a client does not
// reconnect after a 4xxx close.
const (
	closeDisconnected  ws.StatusCode = 4001
	reasonDisconnected               = "disconnected by server"
)

// controlQueue bounds the control messages waiting for the background loop;
// beyond it they are dropped and counted.
const controlQueue = 256

// controlMsg is a message on controlTopic.
type controlMsg struct {
	Op   string `json:"op"`   // "disconnect"
	User string `json:"user"` // the user to disconnect
	Node string `json:"node"` // the sender, which has acted already
}

// control is the node's subscriber on controlTopic (with a broker only).
// Send runs under the hub's topic lock and only queues; the background
// loop acts.
type control struct {
	node    string            // this node's random id; immutable
	ch      chan *bpool.Frame // the messages' data for the background loop
	topic   *hub.Topic        // set once subscribed; background loop only
	failing atomic.Bool       // the last subscribe failed (logged once); set by the background loop
	dropped atomic.Int64      // messages dropped with ch full
}

func newControl() *control {
	return &control{node: engine.NewEpoch(), ch: make(chan *bpool.Frame, controlQueue)}
}

// Send implements hub.Subscriber. An empty frame is a reset of the control
// topic (messages lost in a broker outage): there is nothing to do about
// those.
func (c *control) Send(f *bpool.Frame) bool {
	if len(f.B) == 0 {
		f.Release()
		return true
	}
	select {
	case c.ch <- f:
		return true
	default:
		f.Release()
		c.dropped.Add(1)
		return false
	}
}

// encodeFrame is the hub's Encoder: the delivery frame of the protocol,
// except on controlTopic, whose publications reach the control subscriber
// as their bare data.
func encodeFrame(topic string, seq uint64, data []byte) *bpool.Frame {
	if topic == controlTopic {
		f := bpool.NewFrame(len(data))
		f.B = append(f.B, data...)
		return f
	}
	return protocol.NewDeliveryFrame(topic, seq, data)
}

// listenControl subscribes the control subscriber when there is a broker
// and it is not yet subscribed (the broker may be down at start: the
// background loop calls it again every second). Background loop only.
func (s *Server) listenControl() {
	if s.cfg.Broker == "" || s.ctl.topic != nil {
		return
	}
	ctx, cancel := s.engineContext()
	defer cancel()
	t, _, err := s.hub.SubscribeAt(ctx, controlTopic, s.ctl, false)
	if err != nil {
		if !s.ctl.failing.Swap(true) {
			s.log.Warn("control topic not listened to yet (retried every second): disconnects asked of other nodes do not reach this one", "err", err)
		}
		return
	}
	if s.ctl.failing.Swap(false) {
		s.log.Info("control topic listened to: disconnects from other nodes reach this one again")
	}
	s.ctl.topic = t
}

// stopControl leaves the control topic and drops what is queued.
// Background loop only, at its end.
func (s *Server) stopControl() {
	if s.ctl.topic != nil {
		s.ctl.topic.Unsubscribe(s.ctl)
		s.ctl.topic = nil
	}
	for {
		select {
		case f := <-s.ctl.ch:
			f.Release()
		default:
			return
		}
	}
}

// handleControl carries out one control message from another node.
func (s *Server) handleControl(b []byte) {
	var m controlMsg
	if json.Unmarshal(b, &m) != nil || m.Node == s.ctl.node {
		return
	}
	if m.Op == "disconnect" && protocol.ValidUser(m.User) {
		s.disconnectLocal(m.User)
	}
}

// disconnect closes user's connections on this node and, with a broker,
// asks the other nodes to close theirs. It returns the connections closed
// here.
func (s *Server) disconnect(user string) (int, error) {
	n := s.disconnectLocal(user)
	if s.cfg.Broker == "" {
		return n, nil
	}
	b, _ := json.Marshal(controlMsg{Op: "disconnect", User: user, Node: s.ctl.node})
	ctx, cancel := s.engineContext()
	defer cancel()
	_, err := s.hub.PublishContext(ctx, controlTopic, b)
	return n, err
}

// disconnectLocal closes user's connections on this node with 4001 and
// returns how many it closed (not counting those closing already).
func (s *Server) disconnectLocal(user string) int {
	n := 0
	for _, sub := range s.hub.Subscribers(protocol.UserStream(user), nil) {
		if c, ok := sub.(*wsconn.Conn); ok && c.CloseWith(closeDisconnected, reasonDisconnected) {
			n++
		}
	}
	s.metrics.disconnected.Add(int64(n))
	return n
}

// userStream is the stream a connection with claims joins at its upgrade:
// "" without claims or a sub, false when the sub is not a valid user id.
func userStream(cl *claims) (string, bool) {
	if cl == nil || cl.Subject == "" {
		return "", true
	}
	if !protocol.ValidUser(cl.Subject) {
		return "", false
	}
	return protocol.UserStream(cl.Subject), true
}

var _ hub.Subscriber = (*control)(nil)
