package redis

import (
	"context"
	"errors"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wspush/wspush/engine"
)

// Listen implements engine.Engine: the node subscribes to the topic's
// channel (once, however many Listens), waits for Redis to confirm, and
// only then reads the position, so every publication after it arrives.
func (e *Engine) Listen(ctx context.Context, topic string) (engine.Position, error) {
	e.cmdMu.Lock()
	e.mu.Lock()
	l := e.topics[topic]
	first := l == nil
	if first {
		l = &listening{confirmed: make(chan struct{})}
		e.topics[topic] = l
	}
	l.n++
	e.mu.Unlock()
	var err error
	if first {
		err = e.subscribeFirst(ctx, topic, l)
	}
	e.cmdMu.Unlock()
	if err == nil {
		select {
		case <-l.confirmed:
			e.mu.Lock()
			err = l.failed
			e.mu.Unlock()
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		var pos engine.Position
		if pos, err = e.position(ctx, topic); err == nil {
			return pos, nil
		}
	}
	e.unlisten(topic, l)
	return engine.Position{}, e.fail(err)
}

// subscribeFirst subscribes the topic of a first Listen on its shard. When
// no shard can take it (the cluster's slot owner is unknown, the engine is
// closed), the entry is dropped and its waiting Listens fail, so the next
// Listen tries again. A subscribe that failed on a shard is retried by
// go-redis when it reconnects. Call with cmdMu held.
func (e *Engine) subscribeFirst(ctx context.Context, topic string, l *listening) error {
	sh, err := e.subscribeTopic(ctx, topic)
	e.mu.Lock()
	defer e.mu.Unlock()
	if sh == nil || errors.Is(err, errClosed) {
		if e.topics[topic] == l {
			delete(e.topics, topic)
		}
		l.failed, l.ok = err, true
		close(l.confirmed)
		return err
	}
	l.sh = sh
	return err
}

// position runs the position script.
func (e *Engine) position(ctx context.Context, topic string) (engine.Position, error) {
	res, err := positionScript.Run(ctx, e.rdb, []string{e.metaKey(topic)}, engine.NewEpoch(), e.cfg.MetaTTL.Milliseconds()).Slice()
	if err != nil {
		return engine.Position{}, err
	}
	return position(res)
}

// Unlisten implements engine.Engine. The node stays subscribed for
// UnlistenDelay; maintainLoop unsubscribes idle topics in batches.
func (e *Engine) Unlisten(topic string) {
	e.unlisten(topic, nil)
}

// unlisten undoes one Listen of topic's entry l (nil: whichever is there).
func (e *Engine) unlisten(topic string, want *listening) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.topics[topic]; l != nil && l.n > 0 && (want == nil || l == want) {
		if l.n--; l.n == 0 {
			l.idleSince = time.Now()
		}
	}
}

// receiveLoop is the one reader of a pub/sub connection: it hands
// publications to the Handler (one at a time, so in channel order; a topic
// lives on one shard), confirms subscriptions, and after a reconnect
// (go-redis resubscribes by itself; in a cluster resubscribe finishes what
// Redis refused) resynchronizes the topics.
func (e *Engine) receiveLoop(sh *shard) {
	defer e.wg.Done()
	failures := 0
	for {
		msg, err := sh.ps.Receive(e.ctx)
		if err != nil {
			if e.ctx.Err() != nil {
				return
			}
			if e.cluster != nil && isCrossSlot(err) {
				e.resubscribe(sh)
				continue
			}
			e.stats.Errors.Add(1)
			sh.err.Store(&err)
			select {
			case <-time.After(backoff(failures)):
			case <-e.ctx.Done():
				return
			}
			failures++
			continue
		}
		if failures > 0 {
			failures = 0
			e.stats.Reconnects.Add(1)
		}
		sh.err.Store(nil)
		switch m := msg.(type) {
		case *goredis.Message:
			e.deliver(m)
		case *goredis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				e.confirm(m.Channel)
			}
		}
	}
}

// deliver hands one channel message to the Handler.
func (e *Engine) deliver(m *goredis.Message) {
	topic, ok := e.topicOf(m.Channel)
	if !ok {
		return
	}
	pos, ms, data, ok := parsePayload(m.Payload)
	if !ok {
		return
	}
	if e.cfg.ObserveLag != nil {
		e.cfg.ObserveLag(time.Since(time.UnixMilli(ms)))
	}
	// The Handler only reads data, and only during the call.
	b := unsafe.Slice(unsafe.StringData(data), len(data))
	e.h.HandlePublication(engine.Publication{Topic: topic, Pos: pos, Data: b})
}

// confirm handles a subscribe confirmation: the first for a topic wakes its
// Listen; a later one means the connection came back, and the Handler is
// told where the topic stands so that it can fill what it missed.
func (e *Engine) confirm(channel string) {
	topic, ok := e.topicOf(channel)
	if !ok {
		return
	}
	e.mu.Lock()
	l := e.topics[topic]
	resync := l != nil && l.ok
	if l != nil && !l.ok {
		l.ok = true
		close(l.confirmed)
	}
	e.mu.Unlock()
	if !resync {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
	defer cancel()
	if pos, err := e.position(ctx, topic); err == nil {
		e.stats.Resyncs.Add(1)
		e.h.HandlePosition(topic, pos)
	}
}

// maintainLoop unsubscribes topics idle for UnlistenDelay, in one command,
// and pings Redis so that Healthy follows it when nothing is published.
func (e *Engine) maintainLoop() {
	defer e.wg.Done()
	t := time.NewTicker(max(e.cfg.UnlistenDelay/2, 10*time.Millisecond))
	defer t.Stop()
	var idle []idleTopic
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			idle = e.unsubscribeIdle(now, idle[:0])
			e.ping()
		}
	}
}

// ping checks the connections: the command ones answer here, each pub/sub
// one through its receiveLoop (its pong clears the shard's err).
func (e *Engine) ping() {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
	defer cancel()
	if err := e.pingShards(ctx); err != nil {
		if e.ctx.Err() == nil {
			e.cmdErr.Store(&err)
		}
	} else {
		e.cmdErr.Store(nil)
	}
}

// unsubscribeIdle drops the topics idle for UnlistenDelay and unsubscribes
// their channels, in one command per shard (one per channel in a cluster).
func (e *Engine) unsubscribeIdle(now time.Time, idle []idleTopic) []idleTopic {
	e.cmdMu.Lock()
	defer e.cmdMu.Unlock()
	e.mu.Lock()
	for topic, l := range e.topics {
		if l.n == 0 && now.Sub(l.idleSince) >= e.cfg.UnlistenDelay {
			delete(e.topics, topic)
			idle = append(idle, idleTopic{l.sh, e.channel(topic)})
		}
	}
	e.mu.Unlock()
	if len(idle) == 0 {
		return idle
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
	defer cancel()
	byShard := make(map[*shard][]string)
	for _, t := range idle {
		byShard[t.sh] = append(byShard[t.sh], t.channel)
	}
	for sh, channels := range byShard {
		_ = e.unsubscribe(ctx, sh, channels)
	}
	return idle
}

// idleTopic is a channel to unsubscribe and its connection.
type idleTopic struct {
	sh      *shard
	channel string
}

// subscribeLoop sends the pending channels of newly listened topics, all
// that piled up since the last one, in one SUBSCRIBE (one Redis only: a
// cluster's SSUBSCRIBE must stay within one slot). A channel whose topic
// was dropped meanwhile is left out.
func (e *Engine) subscribeLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.kick:
		}
		e.cmdMu.Lock()
		e.mu.Lock()
		batch := e.pending[:0:0]
		for _, ch := range e.pending {
			if topic, ok := e.topicOf(ch); ok && e.topics[topic] != nil {
				batch = append(batch, ch)
			}
		}
		e.pending = nil
		e.mu.Unlock()
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
			// On a write error go-redis keeps the channels and sends them
			// again when it reconnects.
			_ = e.shardList()[0].ps.Subscribe(ctx, batch...)
			cancel()
			e.stats.Subscribes.Add(1)
		}
		e.cmdMu.Unlock()
	}
}
