package hub

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/engine/memory"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/internal/slowpolicy"
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
	// MaxTopics caps how many topics this node has subscribers for at
	// once. Zero means no cap.
	MaxTopics int
	// NewEngine builds the engine the hub publishes through, handing it
	// the hub as its Handler. Nil means the memory engine without history.
	NewEngine func(engine.Handler) (engine.Engine, error)
	// EncodeReset frames the reset message a topic's subscribers get when
	// the node lost publications it cannot recover. Nil means none is sent.
	EncodeReset func(topic string, pos engine.Position) *bpool.Frame
	// Timeout bounds the hub's own calls into the engine (filling a gap).
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// BeginFanout and EndFanout, each when set, are called around the fan-out
	// of every publication (outside the topic's lock), so that subscribers
	// that batch their writes write once per fan-out: the server passes
	// its wsconn.Server's BeginBatch and EndBatch.
	BeginFanout, EndFanout func()
	// Latency samples publications for the delivery-latency histograms: a
	// sampled one's frame carries a probe from its arrival here to each
	// socket write. Nil samples nothing.
	Latency *latency.Recorder
	// Policy gives a topic's slow-consumer policy. The hub asks once, when
	// it creates the topic, and marks the frame of every publication of
	// that topic run with it (bpool.Frame.Slow; a conflated run also gets
	// a key of its own, bpool.Frame.Conflate). It is called without hub
	// locks. Nil gives every topic slowpolicy.Default.
	Policy func(topic string) slowpolicy.Policy
}

// conflateKeys hands out the conflation keys of conflated topic runs: one
// per Topic created, unique in the process (shared by every Hub) and never
// reused, so a frame of an earlier run never replaces a newer one's.
var conflateKeys atomic.Uint64

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 2 * time.Second

// Hub is this node's topic registry: which local subscribers each topic has,
// and the fan-out of every publication the engine hands it. All methods are
// safe for concurrent use.
type Hub struct {
	encode      Encoder                                              // immutable
	encodeReset func(topic string, pos engine.Position) *bpool.Frame // immutable; may be nil
	timeout     time.Duration                                        // immutable
	latency     *latency.Recorder                                    // immutable; may be nil
	beginFanout func()                                               // immutable; may be nil
	endFanout   func()                                               // immutable; may be nil
	policy      func(topic string) slowpolicy.Policy                 // immutable; may be nil
	gapsFilled  atomic.Int64
	resets      atomic.Int64
	eng         engine.Engine // immutable after New
	shards      []shard       // immutable after New
	seed        maphash.Seed  // immutable
	max         int64         // immutable; 0: no cap
	count       atomic.Int64  // topics in the shard maps; changed under a shard's mu
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*Topic // guarded by mu; holds exactly the live topics
}

// Topic is one topic on this node, from its first local subscriber to its
// last. While it exists the node listens to it in the engine; seq is the
// last publication it handed its subscribers.
type Topic struct {
	hub   *Hub          // immutable
	shard *shard        // immutable: the shard whose map holds the topic
	name  string        // immutable
	ready chan struct{} // closed once the engine's Listen answered
	// slow and conflate mark every frame this run publishes (immutable;
	// see Config.Policy): conflate is the run's key when slow is
	// slowpolicy.Conflate, else 0.
	slow     slowpolicy.Policy
	conflate uint64

	mu      sync.Mutex              // guards the fields below; held for a whole fan-out
	listen  error                   // Listen's error; set before ready closes
	dead    bool                    // removed from the shard map; set under shard.mu and mu
	live    bool                    // ready and Listen succeeded: epoch and seq are known
	epoch   string                  // the run the subscribers follow
	seq     uint64                  // last seq handed to the subscribers
	early   []engine.Publication    // arrived before Listen answered (data copied)
	subs    []Subscriber            // live subscribers; order is arbitrary
	index   map[Subscriber]int      // position in subs
	held    map[Subscriber]*heldSub // subscribers being recovered: their live frames wait here
	members atomic.Int32            // len(subs) + len(held), for lock-free reads
}

// maxHeld bounds the live frames held for one subscriber while it is being
// recovered; the oldest are dropped beyond it (the client sees a seq gap).
const maxHeld = 4096

// heldSub is a subscriber that does not get live frames yet.
type heldSub struct {
	frames []*bpool.Frame // waiting live frames, in seq order
	seqs   []uint64       // their seqs
	// skipTo: frames up to this seq are not for it (it has them already:
	// it resumed from a position this node has not reached yet).
	skipTo uint64
	// released: Release was called while the topic was still at or before
	// skipTo; it goes live with the first frame after skipTo.
	released bool
}

// New returns an empty hub that frames publications with enc, and the
// engine's error if it could not be built.
func New(cfg Config, enc Encoder) (*Hub, error) {
	n := cfg.Shards
	if n <= 0 {
		n = DefaultShards
	}
	h := &Hub{encode: enc, encodeReset: cfg.EncodeReset, timeout: cfg.Timeout, latency: cfg.Latency, shards: make([]shard, n),
		beginFanout: cfg.BeginFanout, endFanout: cfg.EndFanout, policy: cfg.Policy,
		seed: maphash.MakeSeed(), max: int64(cfg.MaxTopics)}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*Topic)
	}
	if cfg.NewEngine == nil {
		h.eng = memory.New(memory.Config{}, h)
		return h, nil
	}
	var err error
	if h.eng, err = cfg.NewEngine(h); err != nil {
		return nil, err
	}
	return h, nil
}

// Engine returns the engine the hub publishes through.
func (h *Hub) Engine() engine.Engine { return h.eng }

// Close closes the engine.
func (h *Hub) Close() error { return h.eng.Close() }

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

// Subscribe adds sub to the named topic as a live subscriber and returns
// the topic, which the caller keeps to Unsubscribe later. It is SubscribeAt
// without a deadline, holding or position.
func (h *Hub) Subscribe(name string, sub Subscriber) (*Topic, error) {
	t, _, err := h.SubscribeAt(context.Background(), name, sub, false)
	return t, err
}

// SubscribeAt adds sub to the named topic and returns the topic, which the
// caller keeps to Unsubscribe later, and the position the subscription took
// effect at: every later publication reaches sub with a greater seq, none
// at or before it does. Subscribing twice is a no-op. Only subscribing
// creates topics (the node then listens to the topic in the engine); it
// fails with ErrTooManyTopics beyond Config.MaxTopics, or with the
// engine's error.
//
// With hold, the live frames after the position wait in the hub until
// Release, so that the caller can first send older messages (Recover).
func (h *Hub) SubscribeAt(ctx context.Context, name string, sub Subscriber, hold bool) (*Topic, engine.Position, error) {
	return h.subscribe(ctx, name, sub, hold)
}

func (h *Hub) subscribe(ctx context.Context, name string, sub Subscriber, hold bool) (*Topic, engine.Position, error) {
	for {
		t, created, err := h.getOrCreate(name)
		if err != nil {
			return nil, engine.Position{}, err
		}
		if created {
			t.listenEngine(ctx)
		}
		select {
		case <-t.ready:
		case <-ctx.Done():
			return nil, engine.Position{}, ctx.Err()
		}
		t.mu.Lock()
		if t.dead {
			err := t.listen
			t.mu.Unlock()
			if err != nil {
				return nil, engine.Position{}, err
			}
			continue // its last subscriber left just now
		}
		t.addLocked(sub, hold)
		pos := engine.Position{Epoch: t.epoch, Seq: t.seq}
		t.mu.Unlock()
		return t, pos, nil
	}
}

// getOrCreate returns the live topic, creating it (not yet listening) when
// missing.
func (h *Hub) getOrCreate(name string) (t *Topic, created bool, err error) {
	if t := h.lookup(name); t != nil {
		return t, false, nil
	}
	slow := slowpolicy.Default
	if h.policy != nil {
		slow = h.policy(name) // before the lock: it is the caller's code
	}
	s := h.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[name]; t != nil {
		return t, false, nil
	}
	// Reserve the slot first: shards create topics concurrently.
	if n := h.count.Add(1); h.max > 0 && n > h.max {
		h.count.Add(-1)
		return nil, false, ErrTooManyTopics
	}
	t = &Topic{hub: h, shard: s, name: name, ready: make(chan struct{}), index: make(map[Subscriber]int), slow: slow}
	if slow == slowpolicy.Conflate {
		t.conflate = conflateKeys.Add(1)
	}
	s.topics[name] = t
	return t, true, nil
}

// listenEngine asks the engine for the topic's publications (no hub lock
// held) and makes the topic live at the position it answers, handing on
// what arrived meanwhile. On failure the topic is removed.
func (t *Topic) listenEngine(ctx context.Context) {
	pos, err := t.hub.eng.Listen(ctx, t.name)
	t.mu.Lock()
	t.listen = err
	if err == nil {
		t.live, t.epoch, t.seq = true, pos.Epoch, pos.Seq
		for _, p := range t.early {
			t.deliverLocked(p, 0)
		}
	}
	t.early = nil
	close(t.ready)
	t.mu.Unlock()
	if err != nil {
		t.remove(false)
	}
}

// addLocked adds sub once, live or held. t.mu must be held.
func (t *Topic) addLocked(sub Subscriber, hold bool) {
	if _, ok := t.index[sub]; ok {
		return
	}
	if _, ok := t.held[sub]; ok {
		return
	}
	if hold {
		if t.held == nil {
			t.held = make(map[Subscriber]*heldSub)
		}
		t.held[sub] = &heldSub{}
	} else {
		t.index[sub] = len(t.subs)
		t.subs = append(t.subs, sub)
	}
	t.members.Add(1)
}

// Release makes a held subscriber live: the frames held for it are sent, in
// order, and later ones go straight to it. Frames up to skipTo are not
// sent (pass the subscription's position when there is nothing to skip);
// if the topic has not reached skipTo yet, the subscriber goes live with
// the first frame after it. Call it once the older messages were sent.
func (t *Topic) Release(sub Subscriber, skipTo uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hs, ok := t.held[sub]
	if !ok {
		return
	}
	hs.skipTo = max(hs.skipTo, skipTo)
	for i, f := range hs.frames {
		if hs.seqs[i] > hs.skipTo {
			sub.Send(f)
		} else {
			f.Release()
		}
	}
	hs.frames, hs.seqs = nil, nil
	if t.seq < hs.skipTo {
		hs.released = true
		return
	}
	t.liveLocked(sub)
}

// liveLocked moves a held subscriber to the live ones. t.mu must be held.
func (t *Topic) liveLocked(sub Subscriber) {
	delete(t.held, sub)
	t.index[sub] = len(t.subs)
	t.subs = append(t.subs, sub)
}

// Unsubscribe removes sub (live or held) from t. It reports whether sub was
// subscribed. When the last subscriber leaves, the topic is removed from
// the hub and the node stops listening to it.
func (t *Topic) Unsubscribe(sub Subscriber) bool {
	t.mu.Lock()
	if !t.dropLocked(sub) {
		t.mu.Unlock()
		return false
	}
	empty := t.members.Load() == 0
	t.mu.Unlock()
	if empty {
		t.remove(true)
	}
	return true
}

// dropLocked removes sub, releasing frames held for it. t.mu must be held.
func (t *Topic) dropLocked(sub Subscriber) bool {
	if hs, ok := t.held[sub]; ok {
		for _, f := range hs.frames {
			f.Release()
		}
		delete(t.held, sub)
		t.members.Add(-1)
		return true
	}
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
	t.members.Add(-1)
	return true
}

// remove deletes t from its shard if it still has no subscriber (a
// Subscribe may have come in between), then, if it was listening,
// unlistens outside the locks. Lock order: shard.mu, then t.mu.
func (t *Topic) remove(unlisten bool) {
	s := t.shard
	s.mu.Lock()
	t.mu.Lock()
	gone := false
	if t.members.Load() == 0 && !t.dead {
		t.dead, gone = true, true
		t.subs, t.index, t.held = nil, nil, nil
		// A live topic is always the map's entry for its name.
		delete(s.topics, t.name)
		t.hub.count.Add(-1)
	}
	t.mu.Unlock()
	s.mu.Unlock()
	if gone && unlisten {
		t.hub.eng.Unlisten(t.name)
	}
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Epoch returns the run of the topic its subscribers follow (empty before
// the engine answered).
func (t *Topic) Epoch() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch
}

// Policy returns the topic's slow-consumer policy (Config.Policy's answer
// when the topic was created).
func (t *Topic) Policy() slowpolicy.Policy { return t.slow }

// Len reports the topic's subscriber count (live and held).
func (t *Topic) Len() int { return int(t.members.Load()) }
