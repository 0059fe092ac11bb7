package hub

import (
	"context"

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
// for the ones being recovered).
func (h *Hub) HandlePublication(p engine.Publication) engine.Delivery {
	t := h.lookup(p.Topic)
	if t == nil {
		return engine.Delivery{}
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
	return t.deliverLocked(p)
}

// deliverLocked fans p out. A publication at or before the topic's seq (or
// of another run) was seen already or belongs before the subscribers' start:
// it is dropped. t.mu must be held.
func (t *Topic) deliverLocked(p engine.Publication) engine.Delivery {
	if p.Pos.Epoch != t.epoch || p.Pos.Seq <= t.seq {
		return engine.Delivery{}
	}
	t.seq = p.Pos.Seq
	d := engine.Delivery{Recipients: int(t.members.Load())}
	if d.Recipients == 0 {
		return d
	}
	f := t.hub.encode(t.name, p.Pos.Seq, p.Data)
	f.Retain(int32(d.Recipients))
	for _, s := range t.subs {
		if s.Send(f) {
			d.Queued++
		}
	}
	for _, fs := range t.held {
		if len(*fs) == maxHeld {
			(*fs)[0].Release()
			*fs = append((*fs)[:0], (*fs)[1:]...)
		}
		*fs = append(*fs, f)
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

// Recover returns the publications of t after since up to upto (the
// position SubscribeAt answered), in seq order, or false when the engine no
// longer holds them all (another epoch, or trimmed). Send them between
// SubscribeAt (with hold) and Release.
func (t *Topic) Recover(ctx context.Context, since, upto engine.Position) ([]engine.Publication, bool) {
	if since.Epoch != upto.Epoch || since.Seq > upto.Seq {
		return nil, false
	}
	if since.Seq == upto.Seq {
		return nil, true
	}
	pubs, err := t.hub.eng.History(ctx, t.name, since, upto.Seq)
	if err != nil || len(pubs) != int(upto.Seq-since.Seq) {
		return nil, false
	}
	return pubs, true
}
