package hub

import (
	"crypto/rand"
	"encoding/base64"
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

// DefaultShards is the number of topic-map shards when Config.Shards is
// zero.
const DefaultShards = 64

// Config sets up a Hub. The zero value is valid.
type Config struct {
	// Shards is the number of topic-map shards. Zero means DefaultShards.
	Shards int
	// MaxTopics caps how many topics exist at once. Zero means no cap.
	MaxTopics int
}

// Hub is the topic registry. All methods are safe for concurrent use.
//
// Lock order: shard.mu, then Topic.mu; never the reverse. A topic is
// removed (marked dead and deleted from its shard's map) only while both
// are held, so whoever holds either one sees a consistent answer to "is
// this topic live".
type Hub struct {
	encode Encoder      // immutable
	shards []shard      // immutable after New
	seed   maphash.Seed // immutable
	max    int64        // immutable; 0: no cap
	count  atomic.Int64 // topics in the shard maps; changed under a shard's mu
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*Topic // guarded by mu; holds exactly the live topics
}

// Topic is one run of a topic: it is created by the first Subscribe and
// removed when its last subscriber leaves. A later Subscribe to the same
// name creates a new run with a new epoch whose seq restarts at 1.
type Topic struct {
	hub   *Hub   // immutable
	shard *shard // immutable: the shard whose map holds the topic
	name  string // immutable
	epoch string // immutable: this run's id

	mu    sync.Mutex         // guards the fields below; held for a whole fan-out
	dead  bool               // removed from the shard map; set under shard.mu and mu
	seq   uint64             // last seq taken
	subs  []Subscriber       // order is arbitrary
	index map[Subscriber]int // position in subs
}

// New returns an empty hub that frames publishes with enc.
func New(cfg Config, enc Encoder) *Hub {
	n := cfg.Shards
	if n <= 0 {
		n = DefaultShards
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

// lookup returns the named topic or nil. The topic may die before the
// caller locks it: check dead under Topic.mu.
func (h *Hub) lookup(name string) *Topic {
	s := h.shard(name)
	s.mu.RLock()
	t := s.topics[name]
	s.mu.RUnlock()
	return t
}

// newEpoch returns a random id for a topic run: 64 random bits, base64
// RawURL (11 characters of [A-Za-z0-9_-]).
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Subscribe adds sub to the named topic (creating it) and returns the topic,
// which the caller keeps to Unsubscribe later. Subscribing twice is a no-op.
// Only Subscribe creates topics; it fails with ErrTooManyTopics when a new
// one would exceed Config.MaxTopics.
func (h *Hub) Subscribe(name string, sub Subscriber) (*Topic, error) {
	for {
		t := h.lookup(name)
		if t == nil {
			return h.create(name, sub)
		}
		t.mu.Lock()
		if !t.dead {
			t.addLocked(sub)
			t.mu.Unlock()
			return t, nil
		}
		// Its last subscriber left just now; the map no longer has it.
		t.mu.Unlock()
	}
}

// create adds sub to the named topic under the shard's write lock, creating
// the topic if it is still missing.
func (h *Hub) create(name string, sub Subscriber) (*Topic, error) {
	s := h.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[name]; t != nil {
		// Live: removal needs s.mu, which we hold.
		t.mu.Lock()
		t.addLocked(sub)
		t.mu.Unlock()
		return t, nil
	}
	// Reserve the slot first: shards create topics concurrently.
	if n := h.count.Add(1); h.max > 0 && n > h.max {
		h.count.Add(-1)
		return nil, ErrTooManyTopics
	}
	t := &Topic{hub: h, shard: s, name: name, epoch: newEpoch(), index: make(map[Subscriber]int)}
	t.addLocked(sub) // nobody else can see t yet
	s.topics[name] = t
	return t, nil
}

// addLocked adds sub once. t.mu must be held (or t not yet shared).
func (t *Topic) addLocked(sub Subscriber) {
	if _, ok := t.index[sub]; !ok {
		t.index[sub] = len(t.subs)
		t.subs = append(t.subs, sub)
	}
}

// Unsubscribe removes sub from t. It reports whether sub was subscribed.
// When the last subscriber leaves, the topic is removed from the hub.
func (t *Topic) Unsubscribe(sub Subscriber) bool {
	t.mu.Lock()
	i, ok := t.index[sub]
	if !ok {
		t.mu.Unlock()
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
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty {
		t.removeIfEmpty()
	}
	return true
}

// removeIfEmpty deletes t from its shard if it still has no subscriber (a
// Subscribe may have come in between). Lock order: shard.mu, then t.mu.
func (t *Topic) removeIfEmpty() {
	s := t.shard
	s.mu.Lock()
	t.mu.Lock()
	if len(t.subs) == 0 && !t.dead {
		t.dead = true
		t.subs, t.index = nil, nil
		// A live topic is always the map's entry for its name.
		delete(s.topics, t.name)
		t.hub.count.Add(-1)
	}
	t.mu.Unlock()
	s.mu.Unlock()
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Epoch returns the id of this run of the topic: 1-32 characters of
// [A-Za-z0-9_-], random per creation, so that a re-created topic (whose seq
// restarts at 1) is told apart from the previous one, also across restarts.
func (t *Topic) Epoch() string { return t.epoch }

// Len reports the topic's subscriber count.
func (t *Topic) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.subs)
}

// Result is what one publish did.
type Result struct {
	Seq        uint64 // the seq this publish took
	Epoch      string // the topic run the seq belongs to
	Recipients int    // subscribers the frame was offered to
	Queued     int    // of those, how many queued it (the rest dropped it)
}

// Publish gives the next seq of the named topic to data and queues one
// shared frame to every subscriber. data must be valid JSON. A topic that
// does not exist (nobody subscribes) is not created: the answer is seq 1 of
// a fresh epoch with no recipients, and nothing is kept. The error is
// reserved; Publish never fails today.
func (h *Hub) Publish(name string, data []byte) (Result, error) {
	for {
		t := h.lookup(name)
		if t == nil {
			return Result{Seq: 1, Epoch: newEpoch()}, nil
		}
		t.mu.Lock()
		if t.dead {
			t.mu.Unlock()
			continue
		}
		t.seq++
		r := Result{Seq: t.seq, Epoch: t.epoch, Recipients: len(t.subs)}
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
}

// Topics reports how many topics exist.
func (h *Hub) Topics() int { return int(h.count.Load()) }

// Position returns the named topic's epoch and the last seq it took; ok is
// false when the topic does not exist.
func (h *Hub) Position(name string) (epoch string, seq uint64, ok bool) {
	for {
		t := h.lookup(name)
		if t == nil {
			return "", 0, false
		}
		t.mu.Lock()
		dead := t.dead
		epoch, seq = t.epoch, t.seq
		t.mu.Unlock()
		if !dead {
			return epoch, seq, true
		}
	}
}
