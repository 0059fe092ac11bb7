package hub

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/wspush/wspush/internal/bpool"
)

// Subscriber receives frames published to the topics it is subscribed to.
type Subscriber interface {
	// Send queues f for delivery. It owns one reference to f in every case:
	// it keeps it (queued) or releases it (dropped or closed). It reports
	// whether f was queued. It must never block.
	Send(f *bpool.Frame) bool
}

// Encoder builds the one shared frame for a publish. It returns a frame
// holding one reference for the hub.
type Encoder func(topic string, seq uint64, data []byte) *bpool.Frame

// Config sets up a Hub. The zero value is valid.
type Config struct {
	// Shards is the number of topic-map shards. Zero means 64.
	Shards int
	// MaxTopics caps how many topics exist at once. Zero means no cap.
	MaxTopics int
}

// Hub is the topic registry. All methods are safe for concurrent use.
type Hub struct {
	encode Encoder
	shards []shard // immutable after New
	seed   maphash.Seed
	max    int64
	count  atomic.Int64 // topics that exist
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*Topic // guarded by mu; topics are never removed
}

// Topic is one topic's subscribers and sequence.
type Topic struct {
	name string

	mu    sync.Mutex         // guards seq, subs, index; held for a whole fan-out
	seq   uint64             // last seq taken; guarded by mu
	subs  []Subscriber       // guarded by mu; order is arbitrary
	index map[Subscriber]int // position in subs; guarded by mu
}

// New returns an empty hub that frames publishes with enc.
func New(cfg Config, enc Encoder) *Hub {
	n := cfg.Shards
	if n <= 0 {
		n = 64
	}
	h := &Hub{encode: enc, shards: make([]shard, n), seed: maphash.MakeSeed(), max: int64(cfg.MaxTopics)}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*Topic)
	}
	return h
}

func (h *Hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%uint64(len(h.shards))]
}

// topic returns the named topic, creating it when create is set.
func (h *Hub) topic(name string, create bool) (*Topic, error) {
	s := h.shard(name)
	s.mu.RLock()
	t := s.topics[name]
	s.mu.RUnlock()
	if t != nil || !create {
		return t, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.topics[name]; t != nil {
		return t, nil
	}
	// Reserve the slot first: shards create topics concurrently.
	if n := h.count.Add(1); h.max > 0 && n > h.max {
		h.count.Add(-1)
		return nil, ErrTooManyTopics
	}
	t = &Topic{name: name, index: make(map[Subscriber]int)}
	s.topics[name] = t
	return t, nil
}

// Subscribe adds sub to the named topic (creating it) and returns the topic,
// which the caller keeps to Unsubscribe later. Subscribing twice is a no-op.
func (h *Hub) Subscribe(name string, sub Subscriber) (*Topic, error) {
	t, err := h.topic(name, true)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if _, ok := t.index[sub]; !ok {
		t.index[sub] = len(t.subs)
		t.subs = append(t.subs, sub)
	}
	t.mu.Unlock()
	return t, nil
}

// Unsubscribe removes sub from t. It reports whether sub was subscribed.
func (t *Topic) Unsubscribe(sub Subscriber) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[sub]
	if !ok {
		return false
	}
	last := len(t.subs) - 1
	if i != last {
		moved := t.subs[last]
		t.subs[i] = moved
		t.index[moved] = i
	}
	t.subs[last] = nil
	t.subs = t.subs[:last]
	delete(t.index, sub)
	if len(t.subs) == 0 {
		// Let an emptied topic give back a large subscriber array.
		t.subs = nil
		t.index = make(map[Subscriber]int)
	}
	return true
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Len reports the topic's subscriber count.
func (t *Topic) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.subs)
}

// Result is what one publish did.
type Result struct {
	Seq        uint64 // the seq this publish took
	Recipients int    // subscribers the frame was offered to
	Queued     int    // of those, how many queued it (the rest dropped it)
}

// Publish gives the next seq of the named topic (creating it) to data and
// queues one shared frame to every subscriber. data must be valid JSON.
func (h *Hub) Publish(name string, data []byte) (Result, error) {
	t, err := h.topic(name, true)
	if err != nil {
		return Result{}, err
	}
	t.mu.Lock()
	t.seq++
	r := Result{Seq: t.seq, Recipients: len(t.subs)}
	if len(t.subs) > 0 {
		f := h.encode(t.name, t.seq, data)
		f.Retain(int32(len(t.subs)))
		for _, s := range t.subs {
			if s.Send(f) {
				r.Queued++
			}
		}
		f.Release()
	}
	t.mu.Unlock()
	return r, nil
}

// Topics reports how many topics exist.
func (h *Hub) Topics() int { return int(h.count.Load()) }

// Seq returns the last seq taken by the named topic (0 if it does not exist).
func (h *Hub) Seq(name string) uint64 {
	t, _ := h.topic(name, false)
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}
