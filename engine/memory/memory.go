// Package memory is the embedded engine: seq, epochs and history held in
// this process, for a single wspushd (the default; make run needs nothing
// else). It owns its topics' runs and history rings and calls the Handler
// synchronously from Publish, under the topic's lock, so publications reach
// the hub in seq order without a goroutine or a queue. It never knows
// connections or subscribers.
package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wspush/wspush/engine"
)

// Defaults of Config.
const (
	DefaultHistoryTTL = 5 * time.Minute // Config.HistoryTTL
	DefaultShards     = 64              // Config.Shards
)

// entryOverhead is what one history entry costs besides its data, counted
// in HistoryBytes (the entry struct and the slice header of its data).
const entryOverhead = 48

// Config sets up an Engine. The zero value is valid: no history.
type Config struct {
	// HistorySize is how many publications each topic keeps for recovery.
	// Zero means none: every recovery answers not recoverable.
	HistorySize int
	// HistoryTTL is how long a publication is kept at most. Zero means
	// DefaultHistoryTTL.
	HistoryTTL time.Duration
	// MaxTopics caps the topics held at once (listened to, or with
	// history). A publish to a new topic beyond it is delivered to nobody
	// and kept nowhere; a Listen beyond it fails. Zero means no cap.
	MaxTopics int
	// Shards is the number of topic-map shards. Zero means DefaultShards.
	Shards int
}

// Engine is the in-process engine. Create it with New; Close stops its
// history sweeper.
type Engine struct {
	h      engine.Handler // immutable
	cfg    Config         // immutable, defaults applied
	seed   maphash.Seed   // immutable
	shards []shard        // immutable after New

	count   atomic.Int64 // topics in the shard maps; changed under a shard's mu
	bytes   atomic.Int64 // history held, with entryOverhead per entry
	dropped atomic.Int64 // publications to a new topic beyond MaxTopics, kept nowhere

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
	once sync.Once
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*topic // guarded by mu; exactly the live topics
}

// topic is one run of a topic: created by a Listen or a retained publish,
// removed (under its shard's mu and its own) once nobody listens and its
// history is empty.
type topic struct {
	name  string // immutable
	epoch string // immutable

	// mu is held for a whole publish, the Handler call included, so that
	// publications reach the Handler in seq order. It guards the rest.
	mu        sync.Mutex
	dead      bool    // removed from the shard map
	seq       uint64  // last seq taken
	listeners int     // Listens not yet undone
	ring      []entry // history ring, len HistorySize once used
	head, n   int     // oldest entry's index; entries held (consecutive seqs ending at seq)
}

type entry struct {
	at   int64  // unix nanos when published
	data []byte // the engine's own copy, never modified
}

// New returns an engine that hands publications to h.
func New(cfg Config, h engine.Handler) *Engine {
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = DefaultHistoryTTL
	}
	if cfg.Shards <= 0 {
		cfg.Shards = DefaultShards
	}
	e := &Engine{h: h, cfg: cfg, seed: maphash.MakeSeed(), shards: make([]shard, cfg.Shards), done: make(chan struct{})}
	for i := range e.shards {
		e.shards[i].topics = make(map[string]*topic)
	}
	if cfg.HistorySize > 0 {
		e.wg.Add(1)
		go e.sweepLoop()
	}
	return e
}

func (e *Engine) shard(name string) *shard {
	return &e.shards[maphash.String(e.seed, name)%uint64(len(e.shards))]
}

// get returns the live topic, creating it when create is set. A topic may
// die before the caller locks it: check dead under its mu.
func (e *Engine) get(name string, create bool) (*topic, error) {
	s := e.shard(name)
	s.mu.RLock()
	t := s.topics[name]
	s.mu.RUnlock()
	if t != nil || !create {
		return t, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[name]; t != nil || !create {
		return t, nil
	}
	if n := e.count.Add(1); e.cfg.MaxTopics > 0 && n > int64(e.cfg.MaxTopics) {
		e.count.Add(-1)
		return nil, engine.ErrTooManyTopics
	}
	t = &topic{name: name, epoch: engine.NewEpoch()}
	s.topics[name] = t
	return t, nil
}

// lockLive returns the named topic locked and live (creating it when
// create is set), or nil with get's error.
func (e *Engine) lockLive(name string, create bool) (*topic, error) {
	for {
		t, err := e.get(name, create)
		if t == nil {
			return nil, err
		}
		t.mu.Lock()
		if !t.dead {
			return t, nil
		}
		t.mu.Unlock() // removed just now: look again
	}
}

// Publish implements engine.Engine. The Handler runs before it returns.
func (e *Engine) Publish(ctx context.Context, name string, data []byte) (engine.Published, error) {
	t, err := e.lockLive(name, e.cfg.HistorySize > 0)
	if t == nil {
		if err != nil {
			e.dropped.Add(1)
		}
		// Nobody listens and nothing is kept: a run of one.
		return engine.Published{Pos: engine.Position{Epoch: engine.NewEpoch(), Seq: 1}, Sync: true}, nil
	}
	t.seq++
	pos := engine.Position{Epoch: t.epoch, Seq: t.seq}
	if e.cfg.HistorySize > 0 {
		data = append([]byte(nil), data...)
		e.push(t, entry{at: time.Now().UnixNano(), data: data})
	}
	var d engine.Delivery
	if t.listeners > 0 {
		d = e.h.HandlePublication(engine.Publication{Topic: name, Pos: pos, Data: data})
	}
	idle := t.listeners == 0 && t.n == 0
	t.mu.Unlock()
	if idle {
		e.remove(t)
	}
	return engine.Published{Pos: pos, Local: d, Sync: true}, nil
}

// push appends to t's history ring, dropping the oldest when full. t.mu
// must be held.
func (e *Engine) push(t *topic, en entry) {
	if t.ring == nil {
		t.ring = make([]entry, e.cfg.HistorySize)
	}
	if t.n == len(t.ring) {
		e.bytes.Add(-int64(len(t.ring[t.head].data) + entryOverhead))
		t.ring[t.head] = entry{}
		t.head = (t.head + 1) % len(t.ring)
		t.n--
	}
	t.ring[(t.head+t.n)%len(t.ring)] = en
	t.n++
	e.bytes.Add(int64(len(en.data) + entryOverhead))
}

// trim drops the entries older than the TTL. t.mu must be held.
func (e *Engine) trim(t *topic, now int64) {
	limit := now - int64(e.cfg.HistoryTTL)
	for t.n > 0 && t.ring[t.head].at < limit {
		e.bytes.Add(-int64(len(t.ring[t.head].data) + entryOverhead))
		t.ring[t.head] = entry{}
		t.head = (t.head + 1) % len(t.ring)
		t.n--
	}
	if t.n == 0 {
		t.ring, t.head = nil, 0 // an idle topic gives its ring back
	}
}

// remove deletes t if nobody listens and it holds no history.
func (e *Engine) remove(t *topic) {
	s := e.shard(t.name)
	s.mu.Lock()
	t.mu.Lock()
	if !t.dead && t.listeners == 0 && t.n == 0 {
		t.dead = true
		delete(s.topics, t.name)
		e.count.Add(-1)
	}
	t.mu.Unlock()
	s.mu.Unlock()
}

// Listen implements engine.Engine.
func (e *Engine) Listen(ctx context.Context, name string) (engine.Position, error) {
	t, err := e.lockLive(name, true)
	if err != nil {
		return engine.Position{}, err
	}
	t.listeners++
	pos := engine.Position{Epoch: t.epoch, Seq: t.seq}
	t.mu.Unlock()
	return pos, nil
}

// Unlisten implements engine.Engine.
func (e *Engine) Unlisten(name string) {
	t, _ := e.get(name, false)
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.listeners > 0 {
		t.listeners--
	}
	idle := t.listeners == 0 && t.n == 0
	t.mu.Unlock()
	if idle {
		e.remove(t)
	}
}

// History implements engine.Engine. The publications share the engine's
// copies of their data: read-only, but the caller may keep them.
func (e *Engine) History(ctx context.Context, name string, since engine.Position, to uint64) ([]engine.Publication, error) {
	t, _ := e.get(name, false)
	if t == nil {
		return nil, engine.ErrNotRecoverable
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead || t.epoch != since.Epoch || since.Seq > t.seq {
		return nil, engine.ErrNotRecoverable
	}
	to = min(to, t.seq)
	if since.Seq >= to {
		return nil, nil
	}
	e.trim(t, time.Now().UnixNano())
	first := t.seq - uint64(t.n) + 1 // the oldest seq held
	if since.Seq+1 < first {
		return nil, engine.ErrNotRecoverable
	}
	out := make([]engine.Publication, 0, to-since.Seq)
	for seq := since.Seq + 1; seq <= to; seq++ {
		en := t.ring[(t.head+int(seq-first))%len(t.ring)]
		out = append(out, engine.Publication{Topic: name, Pos: engine.Position{Epoch: t.epoch, Seq: seq}, Data: en.data})
	}
	return out, nil
}

// HistoryBytes reports the memory the history holds now.
func (e *Engine) HistoryBytes() int64 { return e.bytes.Load() }

// Topics reports the topics held now (listened to, or with history).
func (e *Engine) Topics() int { return int(e.count.Load()) }

// Dropped reports publications to a new topic beyond MaxTopics, kept
// nowhere.
func (e *Engine) Dropped() int64 { return e.dropped.Load() }

// sweepLoop trims expired history and removes idle topics, a few times per
// TTL.
func (e *Engine) sweepLoop() {
	defer e.wg.Done()
	every := min(max(e.cfg.HistoryTTL/4, 10*time.Millisecond), 10*time.Second)
	tk := time.NewTicker(every)
	defer tk.Stop()
	var idle []*topic
	for {
		select {
		case <-e.done:
			return
		case now := <-tk.C:
			for i := range e.shards {
				idle = e.sweepShard(&e.shards[i], now.UnixNano(), idle[:0])
				for _, t := range idle {
					e.remove(t)
				}
			}
			clear(idle)
		}
	}
}

// sweepShard trims every topic of s and appends those left idle to idle.
func (e *Engine) sweepShard(s *shard, now int64, idle []*topic) []*topic {
	s.mu.RLock()
	ts := make([]*topic, 0, len(s.topics))
	for _, t := range s.topics {
		ts = append(ts, t)
	}
	s.mu.RUnlock()
	for _, t := range ts {
		t.mu.Lock()
		e.trim(t, now)
		if !t.dead && t.listeners == 0 && t.n == 0 {
			idle = append(idle, t)
		}
		t.mu.Unlock()
	}
	return idle
}

// Close implements engine.Engine: it stops the sweeper.
func (e *Engine) Close() error {
	e.once.Do(func() { close(e.done) })
	e.wg.Wait()
	return nil
}

var _ engine.Engine = (*Engine)(nil)
