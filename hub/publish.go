package hub

import (
	"context"
	"math"

	"github.com/wspush/wspush/engine"
)

// Result is what one publish did.
type Result struct {
	Seq        uint64 // the seq this publish took
	Epoch      string // the topic run the seq belongs to
	Recipients int    // subscribers on this node the frame was offered to
	Queued     int    // of those, how many queued it (the rest dropped it)
}

// Publish is PublishContext without a deadline.
func (h *Hub) Publish(name string, data []byte) (Result, error) {
	return h.PublishContext(context.Background(), name, data)
}

// PublishContext hands data to the engine, which gives it the topic's next seq and
// brings it to every node listening to the topic, this one included. data
// must be valid JSON. A topic with no subscribers anywhere and no history
// is a run of one: seq 1 of a fresh epoch, kept nowhere.
func (h *Hub) PublishContext(ctx context.Context, name string, data []byte) (Result, error) {
	p, err := h.eng.Publish(ctx, name, data)
	if err != nil {
		return Result{}, err
	}
	r := Result{Seq: p.Pos.Seq, Epoch: p.Pos.Epoch, Recipients: p.Local.Recipients, Queued: p.Local.Queued}
	if !p.Sync {
		// The engine delivers later: the local subscribers now.
		if t := h.lookup(name); t != nil {
			r.Recipients = t.Len()
			r.Queued = r.Recipients
		}
	}
	return r, nil
}

// HandlePublication implements engine.Handler: it frames p once and queues
// the frame to every live subscriber of the topic on this node (and holds it
// for the ones being recovered). A seq gap (a broker connection that
// dropped) is filled from the engine's history first; what cannot be
// filled, or a new run of the topic, is announced to the subscribers with a
// reset.
func (h *Hub) HandlePublication(p engine.Publication) engine.Delivery {
	born := h.latency.Sample() // before any lock: waiting for one is latency too
	t := h.lookup(p.Topic)
	if t == nil {
		return engine.Delivery{}
	}
	if h.beginFanout != nil {
		h.beginFanout()
	}
	if h.endFanout != nil {
		defer h.endFanout() // after t.mu is released (defers run last first)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return engine.Delivery{}
	}
	if !t.live {
		p.Data = append([]byte(nil), p.Data...)
		t.early = append(t.early, p)
		return engine.Delivery{}
	}
	t.catchUpLocked(engine.Position{Epoch: p.Pos.Epoch, Seq: p.Pos.Seq - 1})
	return t.deliverLocked(p, born)
}

// HandlePosition implements engine.Handler: a topic the node is behind on
// catches up to pos (filled from history, else reset).
func (h *Hub) HandlePosition(topic string, pos engine.Position) {
	t := h.lookup(topic)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dead && t.live {
		t.catchUpLocked(pos)
	}
}

// catchUpLocked brings the topic to pos when it is behind: the missing
// publications come from the engine's history (t.mu is released meanwhile:
// the hub never calls the engine under its locks), else the subscribers get
// a reset and follow from pos. A new run (another epoch) is always a
// reset. t.mu must be held; it is held again on return.
func (t *Topic) catchUpLocked(pos engine.Position) {
	if pos.Epoch == t.epoch && pos.Seq <= t.seq {
		return
	}
	if pos.Epoch == t.epoch {
		from := engine.Position{Epoch: t.epoch, Seq: t.seq}
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), t.hub.timeout)
		pubs, err := t.hub.eng.History(ctx, t.name, from, pos.Seq)
		cancel()
		t.mu.Lock()
		if t.dead {
			return
		}
		if err == nil && len(pubs) == int(pos.Seq-from.Seq) {
			for _, p := range pubs {
				t.deliverLocked(p, 0)
			}
			t.hub.gapsFilled.Add(1)
			return
		}
		if t.epoch != pos.Epoch || t.seq >= pos.Seq {
			return // moved on meanwhile
		}
	}
	t.resetLocked(pos)
}

// resetLocked tells every subscriber that the messages up to pos are lost
// to it and live delivery continues after pos. t.mu must be held.
func (t *Topic) resetLocked(pos engine.Position) {
	t.epoch, t.seq = pos.Epoch, pos.Seq
	t.hub.resets.Add(1)
	n := int(t.members.Load())
	if n == 0 || t.hub.encodeReset == nil {
		return
	}
	f := t.hub.encodeReset(t.name, pos)
	f.Retain(int32(n))
	for _, s := range t.subs {
		s.Send(f)
	}
	for _, hs := range t.held {
		// Whatever it resumed from is void now; the reset itself is never
		// skipped.
		hs.skipTo = 0
		hs.frames = append(hs.frames, f)
		hs.seqs = append(hs.seqs, math.MaxUint64)
	}
	f.Release()
}

// GapsFilled reports how many seq gaps were filled from history.
func (h *Hub) GapsFilled() int64 { return h.gapsFilled.Load() }

// Resets reports how many resets the topics' subscribers were sent.
func (h *Hub) Resets() int64 { return h.resets.Load() }

// deliverLocked fans p out. A publication at or before the topic's seq (or
// of another run) was seen already or belongs before the subscribers' start:
// it is dropped. born, when not 0, is the arrival of a publication sampled
// for the latency histograms. t.mu must be held.
func (t *Topic) deliverLocked(p engine.Publication, born int64) engine.Delivery {
	if p.Pos.Epoch != t.epoch || p.Pos.Seq <= t.seq {
		return engine.Delivery{}
	}
	t.seq = p.Pos.Seq
	d := engine.Delivery{Recipients: int(t.members.Load())}
	if d.Recipients == 0 {
		return d
	}
	f := t.hub.encode(t.name, p.Pos.Seq, p.Data)
	f.Slow, f.Conflate = t.slow, t.conflate // before the frame is shared
	if born != 0 {
		f.Probe = t.hub.latency.NewProbe(born)
	}
	f.Retain(int32(len(t.subs)))
	for _, s := range t.subs {
		if s.Send(f) {
			d.Queued++
		}
	}
	for sub, hs := range t.held {
		if p.Pos.Seq <= hs.skipTo {
			continue // it has this one already
		}
		f.Retain(1)
		if hs.released {
			if sub.Send(f) {
				d.Queued++
			}
			t.liveLocked(sub)
			continue
		}
		if len(hs.frames) == maxHeld {
			hs.frames[0].Release()
			hs.frames, hs.seqs = hs.frames[1:], hs.seqs[1:]
		}
		hs.frames = append(hs.frames, f)
		hs.seqs = append(hs.seqs, p.Pos.Seq)
		d.Queued++
	}
	f.Release()
	return d
}

// Topics reports how many topics this node has subscribers for.
func (h *Hub) Topics() int { return int(h.count.Load()) }

// Position returns the named topic's epoch and the last seq its subscribers
// on this node were handed; ok is false when the node has no subscriber
// for it.
func (h *Hub) Position(name string) (epoch string, seq uint64, ok bool) {
	for {
		t := h.lookup(name)
		if t == nil {
			return "", 0, false
		}
		t.mu.Lock()
		dead, live := t.dead, t.live
		epoch, seq = t.epoch, t.seq
		t.mu.Unlock()
		if !dead {
			return epoch, seq, live
		}
	}
}

// Subscribers appends the named topic's subscribers on this node (live
// ones and those being recovered) to dst, in no particular order, and
// returns it.
func (h *Hub) Subscribers(name string, dst []Subscriber) []Subscriber {
	for {
		t := h.lookup(name)
		if t == nil {
			return dst
		}
		t.mu.Lock()
		dead := t.dead
		if !dead {
			dst = append(dst, t.subs...)
			for s := range t.held {
				dst = append(dst, s)
			}
		}
		t.mu.Unlock()
		if !dead {
			return dst
		}
	}
}

// Recover returns the publications of t after since up to upto (the
// position SubscribeAt answered), in seq order, or false when the engine no
// longer holds them all (another epoch, or trimmed). Send them between
// SubscribeAt (with hold) and Release(sub, max(since.Seq, upto.Seq)).
func (t *Topic) Recover(ctx context.Context, since, upto engine.Position) ([]engine.Publication, bool) {
	if since.Epoch != upto.Epoch {
		return nil, false
	}
	if since.Seq >= upto.Seq {
		// Nothing missed here. A position ahead of this node (the client
		// read further on a node that is ahead of this one) is released
		// with skipTo = since.Seq, so it gets nothing twice.
		return nil, true
	}
	pubs, err := t.hub.eng.History(ctx, t.name, since, upto.Seq)
	if err != nil || len(pubs) != int(upto.Seq-since.Seq) {
		return nil, false
	}
	return pubs, true
}
