package server

import (
	"context"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/protocol"
	"github.com/wspush/wspush/wsconn"
)

// A subscribe (by command or at connect) runs in three steps, all on the
// connection's slot: join every topic held (all or nothing: live frames
// wait in the hub), fetch what each recovering topic missed, then queue the
// reply, the recovered messages and release the live ones. So the client
// sees the reply, then each topic's missed messages in seq order, then live
// ones, with no gap and no duplicate.

// joined is one topic of a subscribe in progress.
type joined struct {
	t         *hub.Topic
	pos       engine.Position      // where the subscription took effect
	held      bool                 // new: its live frames wait for release
	since     bool                 // a recovery was asked for
	recovered bool                 // ... and everything missed is in pubs
	pubs      []engine.Publication // the missed messages, in seq order
	skipTo    uint64               // the client's own position when it is ahead of this node
}

// subscribeAll joins c to every topic in names, or to none: when one fails
// (a limit, the engine), the ones this call added are taken back. Topics in
// since are recovered from the given positions. With hold (a reply with
// positions will be sent, or there is something to recover) the new topics
// wait for release, which the caller calls after the reply; without, they
// are live at once (the plain v1 subscribe costs nothing more).
func (s *Server) subscribeAll(ctx context.Context, ss *session, c *wsconn.Conn, names []string, since map[string]engine.Position, hold bool) ([]joined, error) {
	hold = hold || len(since) > 0
	js := make([]joined, 0, len(names))
	had := len(ss.topics)
	for _, name := range names {
		j, err := s.join(ctx, ss, c, name, hold)
		if err != nil {
			for _, t := range ss.topics[had:] {
				t.Unsubscribe(c)
			}
			clear(ss.topics[had:])
			ss.topics = ss.topics[:had]
			return nil, err
		}
		js = append(js, j)
	}
	for i := range js {
		from, ok := since[js[i].t.Name()]
		if !ok {
			continue
		}
		js[i].since = true
		if js[i].held {
			js[i].pubs, js[i].recovered = js[i].t.Recover(ctx, from, js[i].pos)
			if js[i].recovered {
				js[i].skipTo = from.Seq
			}
		}
	}
	return js, nil
}

// join adds c to one topic, held; a topic c already has is reported at the
// hub's current position and not held.
func (s *Server) join(ctx context.Context, ss *session, c *wsconn.Conn, name string, hold bool) (joined, error) {
	for _, t := range ss.topics {
		if t.Name() == name {
			e, seq, _ := s.hub.Position(name)
			return joined{t: t, pos: engine.Position{Epoch: e, Seq: seq}}, nil
		}
	}
	if m := s.cfg.Limits.MaxSubscriptions; m > 0 && len(ss.topics) >= m {
		return joined{}, errTooManySubs
	}
	t, pos, err := s.hub.SubscribeAt(ctx, name, c, hold)
	if err != nil {
		return joined{}, err
	}
	ss.topics = append(ss.topics, t)
	return joined{t: t, pos: pos, held: hold}, nil
}

// release queues each topic's recovered messages and lets its live ones
// through. Call it after the reply was queued.
func release(c *wsconn.Conn, js []joined) {
	for _, j := range js {
		if !j.held {
			continue
		}
		if len(j.pubs) > 0 {
			c.SendFrames(deliveries(j.t.Name(), j.pubs))
		}
		j.t.Release(c, max(j.pos.Seq, j.skipTo))
	}
}

// deliveries frames pubs back to back in one buffer: one queue entry, so
// recovering more messages than the send queue holds drops none of them.
func deliveries(topic string, pubs []engine.Publication) *bpool.Frame {
	n := 0
	for _, p := range pubs {
		n += protocol.DeliveryFrameLen(topic, p.Pos.Seq, p.Data)
	}
	f := bpool.NewFrame(n)
	for _, p := range pubs {
		f.B = protocol.AppendDeliveryFrame(f.B, topic, p.Pos.Seq, p.Data)
	}
	return f
}

// subStates is the reply's view of js.
func subStates(js []joined) []protocol.SubState {
	out := make([]protocol.SubState, len(js))
	for i, j := range js {
		out[i] = protocol.SubState{Topic: j.t.Name(), Pos: j.pos, Since: j.since, Recovered: j.recovered,
			Conflate: j.t.Policy() == slowpolicy.Conflate}
	}
	return out
}

// engineContext bounds one call into the engine. The embedded engine never
// waits, so it gets no timer (a connect allocates nothing for it).
func (s *Server) engineContext() (context.Context, context.CancelFunc) {
	if s.cfg.Broker == "" {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), s.cfg.EngineTimeout)
}
