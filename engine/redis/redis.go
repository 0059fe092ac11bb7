// Package redis is the engine that makes several wspushd nodes one system
// through Redis (github.com/redis/go-redis/v9): a publish on any node is one
// atomic Lua step in Redis (next seq, history stream trimmed to size, the
// announcement on the topic's channel), so seq and epoch are global, every
// node that listens gets it, and a client may resume on any node.
//
// What it owns: the Redis clients, the node's pub/sub connection (one per
// master with a Redis Cluster, see cluster.go), which
// topics the node listens to there (subscribed on the first Listen, in
// batches with one Redis: the topics that piled up while a SUBSCRIBE was
// being sent go in the next one; unsubscribed in batches a while after the
// last Unlisten), and noticing
// that the connection came back (then it tells the hub each listened
// topic's position, so that gaps are filled or reported). What it never
// does: it knows nothing of connections or subscribers, and it never blocks
// a publisher on Redis longer than the caller's context.
//
// Keys, per topic T and prefix P: P:{T}:m (hash: e epoch, s last seq),
// P:{T}:s (the history stream, entry ids seq-0); channel P:{T}. The hash
// tag keeps a topic's keys and channel in one slot of a Redis Cluster.
package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wspush/wspush/engine"
)

// Defaults of Config.
const (
	DefaultPrefix        = "wspush"
	DefaultHistoryTTL    = 5 * time.Minute
	DefaultMetaTTL       = 24 * time.Hour
	DefaultUnlistenDelay = time.Second
	DefaultTimeout       = 2 * time.Second
)

// Config sets up an Engine.
type Config struct {
	// URL names the broker: one Redis as redis://[user:password@]host:port/db
	// (rediss:// for TLS), or a Redis Cluster as
	// redis+cluster://[user:password@]host1:port1,host2:port2/ (rediss+cluster://
	// for TLS): one or more comma-separated seed addresses (port 6379 when
	// left out), database 0 only, go-redis ClusterOptions query parameters.
	// With a cluster, publications travel by sharded pub/sub (SPUBLISH,
	// SSUBSCRIBE; Redis 7.0 or later). Required.
	URL string
	// HistorySize is how many publications each topic keeps. Zero means
	// none.
	HistorySize int
	// HistoryTTL is how long a kept publication stays at most. Zero means
	// DefaultHistoryTTL.
	HistoryTTL time.Duration
	// MetaTTL is how long a topic's run (its epoch and seq) outlives its
	// last publication or listen. Zero means DefaultMetaTTL; it is never
	// shorter than HistoryTTL.
	MetaTTL time.Duration
	// Prefix starts every key and channel. Empty means DefaultPrefix.
	Prefix string
	// UnlistenDelay is how long the node stays subscribed to a topic after
	// its last Unlisten, so that churn costs no Redis commands and
	// unsubscribes go out in batches. Zero means DefaultUnlistenDelay.
	UnlistenDelay time.Duration
	// Timeout bounds the engine's own calls into Redis (resynchronizing
	// after a reconnect, health checks). Zero means DefaultTimeout.
	Timeout time.Duration
	// ObserveLag, if set, is called for every publication this node
	// receives with the time from the publish (Redis's clock) to its
	// arrival here (this node's clock): the delivery lag, as far as the two
	// clocks agree. It runs on the pub/sub loop and must be quick.
	ObserveLag func(time.Duration)
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = DefaultHistoryTTL
	}
	if c.MetaTTL <= 0 {
		c.MetaTTL = DefaultMetaTTL
	}
	c.MetaTTL = max(c.MetaTTL, c.HistoryTTL)
	if c.UnlistenDelay <= 0 {
		c.UnlistenDelay = DefaultUnlistenDelay
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Engine is the Redis engine. Create it with New, stop it with Close.
type Engine struct {
	h       engine.Handler
	cfg     Config // immutable, defaults applied
	rdb     goredis.UniversalClient
	cluster *goredis.ClusterClient // rdb in cluster mode; nil with one Redis
	pubCmd  string                 // PUBLISH, or SPUBLISH in cluster mode

	// cmdMu serializes the node's (S)SUBSCRIBE and (S)UNSUBSCRIBE commands
	// with the changes of topics they follow from, so Redis sees them in
	// the same order as the map. Lock order: cmdMu, then mu.
	cmdMu  sync.Mutex
	mu     sync.Mutex
	topics map[string]*listening // guarded by mu
	// shards are the pub/sub connections by master address ("" with one
	// Redis, started by New); guarded by mu, added under cmdMu too, never
	// removed before Close.
	shards map[string]*shard
	closed bool // guarded by mu: set by Close, no shard starts after it
	// pending are channels waiting for subscribeLoop's next SUBSCRIBE (one
	// Redis only); guarded by mu. kick (cap 1) wakes the loop.
	pending []string
	kick    chan struct{}

	// cmdErr is the last error of the command connections; nil: they
	// answered since. Healthy needs it and every shard's err nil.
	cmdErr atomic.Pointer[error]
	stats  Stats

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// listening is one topic the node is subscribed to in Redis.
type listening struct {
	n         int           // Listens not undone
	idleSince time.Time     // when n dropped to 0 (unsubscribed after UnlistenDelay)
	confirmed chan struct{} // closed at the first subscribe confirmation, or on failed
	ok        bool          // confirmed once; a later confirmation means a reconnect
	sh        *shard        // the connection subscribed; set at the first Listen
	failed    error         // why the first Listen could not subscribe (entry dropped)
}

// Stats counts what the engine did; read at any time.
type Stats struct {
	Reconnects atomic.Int64 // pub/sub connections that came back
	Resyncs    atomic.Int64 // positions handed to the hub after a reconnect
	Errors     atomic.Int64 // pub/sub receive errors
	Subscribes atomic.Int64 // SUBSCRIBE commands sent for newly listened topics (batched)
}

// New connects to Redis (lazily: a broker that is down now is retried) and
// starts the node's pub/sub loop.
func New(cfg Config, h engine.Handler) (*Engine, error) {
	cfg = cfg.withDefaults()
	rdb, cluster, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("engine/redis: %w", err)
	}
	e := &Engine{h: h, cfg: cfg, rdb: rdb, cluster: cluster, pubCmd: "PUBLISH",
		topics: make(map[string]*listening), shards: make(map[string]*shard), kick: make(chan struct{}, 1)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if cluster != nil {
		e.pubCmd = "SPUBLISH"
	} else if err := e.startShard(&shard{ps: rdb.Subscribe(e.ctx)}); err != nil {
		e.cancel()
		return nil, fmt.Errorf("engine/redis: %w", err)
	} else {
		e.wg.Add(1)
		go e.subscribeLoop()
	}
	e.wg.Add(1)
	go e.maintainLoop()
	return e, nil
}

func (e *Engine) metaKey(topic string) string   { return e.cfg.Prefix + ":{" + topic + "}:m" }
func (e *Engine) streamKey(topic string) string { return e.cfg.Prefix + ":{" + topic + "}:s" }
func (e *Engine) channel(topic string) string   { return e.cfg.Prefix + ":{" + topic + "}" }

// topicOf is channel's inverse; false for a channel that is not ours.
func (e *Engine) topicOf(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, e.cfg.Prefix+":{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "}")
}

// Publish implements engine.Engine: one atomic script in Redis.
func (e *Engine) Publish(ctx context.Context, topic string, data []byte) (engine.Published, error) {
	res, err := publishScript.Run(ctx, e.rdb, []string{e.metaKey(topic), e.streamKey(topic)},
		data, e.cfg.HistorySize, e.cfg.HistoryTTL.Milliseconds(), e.cfg.MetaTTL.Milliseconds(),
		engine.NewEpoch(), e.channel(topic), e.pubCmd).Slice()
	if err != nil {
		return engine.Published{}, e.fail(err)
	}
	pos, err := position(res)
	if err != nil {
		return engine.Published{}, err
	}
	return engine.Published{Pos: pos}, nil
}

// position reads a script's {epoch, seq} answer.
func position(res []any) (engine.Position, error) {
	if len(res) != 2 {
		return engine.Position{}, fmt.Errorf("%w: script answered %v", engine.ErrUnavailable, res)
	}
	epoch, _ := res[0].(string)
	seq, ok := res[1].(int64)
	if !ok || !engine.ValidEpoch(epoch) {
		return engine.Position{}, fmt.Errorf("%w: script answered %v", engine.ErrUnavailable, res)
	}
	return engine.Position{Epoch: epoch, Seq: uint64(seq)}, nil
}

// fail records a Redis error as the engine's health and wraps it.
func (e *Engine) fail(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	e.cmdErr.Store(&err)
	return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
}

// Healthy reports nil when the broker answered lately on the command and
// every pub/sub connection, else the last error.
func (e *Engine) Healthy() error {
	if err := e.cmdErr.Load(); err != nil {
		return *err
	}
	for _, sh := range e.shardList() {
		if err := sh.err.Load(); err != nil {
			return *err
		}
	}
	return nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// History implements engine.Engine.
func (e *Engine) History(ctx context.Context, topic string, since engine.Position, to uint64) ([]engine.Publication, error) {
	from := since.Seq + 1
	if from > to {
		to = since.Seq // an empty range: only the epoch is checked
	}
	res, err := historyScript.Run(ctx, e.rdb, []string{e.metaKey(topic), e.streamKey(topic)},
		since.Epoch, from, to, e.cfg.HistoryTTL.Milliseconds()).Slice()
	if errors.Is(err, goredis.Nil) {
		return nil, engine.ErrNotRecoverable
	}
	if err != nil {
		return nil, e.fail(err)
	}
	out := make([]engine.Publication, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		seq, _ := res[i].(int64)
		data, _ := res[i+1].(string)
		out = append(out, engine.Publication{Topic: topic, Pos: engine.Position{Epoch: since.Epoch, Seq: uint64(seq)}, Data: []byte(data)})
	}
	return out, nil
}

// Close implements engine.Engine.
func (e *Engine) Close() error {
	var err error
	e.once.Do(func() {
		e.cancel()
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		var errs []error
		for _, sh := range e.shardList() {
			errs = append(errs, sh.ps.Close())
		}
		err = errors.Join(append(errs, e.rdb.Close())...)
		e.wg.Wait()
	})
	return err
}

// backoff is the wait before retry n (from 0): exponential from 50 ms to
// 2 s, with full jitter.
func backoff(n int) time.Duration {
	d := min(50*time.Millisecond<<min(n, 6), 2*time.Second)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// parsePayload splits a channel payload "epoch:seq:ms:data", ms being
// Redis's clock (unix milliseconds) at the publish.
func parsePayload(s string) (pos engine.Position, ms int64, data string, ok bool) {
	epoch, rest, ok1 := strings.Cut(s, ":")
	num, rest, ok2 := strings.Cut(rest, ":")
	at, data, ok3 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || !ok3 || !engine.ValidEpoch(epoch) {
		return engine.Position{}, 0, "", false
	}
	seq, err1 := strconv.ParseUint(num, 10, 64)
	ms, err2 := strconv.ParseInt(at, 10, 64)
	if err1 != nil || err2 != nil {
		return engine.Position{}, 0, "", false
	}
	return engine.Position{Epoch: epoch, Seq: seq}, ms, data, true
}

var _ engine.Engine = (*Engine)(nil)
