package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Redis Cluster: a URL with the scheme redis+cluster:// (rediss+cluster://
// for TLS) names one or more seed addresses of a cluster. A topic's keys
// and its channel share the hash tag {topic}, so they live in one slot; the
// publish script announces with SPUBLISH (sharded pub/sub) and each node
// listens with SSUBSCRIBE on one pub/sub connection per master that owns
// a listened topic's slot (a go-redis cluster PubSub talks to one node).
//
// Not handled yet: a slot that moves to another master while listened
// (resharding, a failover to a replica). The topic stays on its old
// connection (a resubscribe there is answered MOVED; untested: whether
// Redis drops the subscription silently) and may miss publications until
// it is unlistened for UnlistenDelay; the next Listen finds the new owner.

// Cluster URL schemes (Config.URL).
const (
	clusterScheme    = "redis+cluster"
	clusterTLSScheme = "rediss+cluster"
)

// errClosed answers a Listen that races with Close.
var errClosed = errors.New("engine/redis: closed")

// shard is one pub/sub connection and its receive loop: with one Redis the
// only one (addr ""), in cluster mode one per master address.
type shard struct {
	addr string
	ps   *goredis.PubSub // safe for concurrent use; read only by receiveLoop
	// err is the connection's last receive error; nil: it answered since.
	err atomic.Pointer[error]
}

// newClient builds the command client cfg.URL names: a *goredis.Client for
// one Redis, a *goredis.ClusterClient (also returned as the second result)
// for the cluster schemes.
func newClient(cfg Config) (goredis.UniversalClient, *goredis.ClusterClient, error) {
	scheme, rest, _ := strings.Cut(cfg.URL, "://")
	if scheme != clusterScheme && scheme != clusterTLSScheme {
		opt, err := goredis.ParseURL(cfg.URL)
		if err != nil {
			return nil, nil, err
		}
		opt.DialTimeout = min(opt.DialTimeout, cfg.Timeout)
		return goredis.NewClient(opt), nil, nil
	}
	opt, err := parseClusterURL(strings.TrimSuffix(scheme, "+cluster"), rest)
	if err != nil {
		return nil, nil, err
	}
	if opt.DialTimeout <= 0 || opt.DialTimeout > cfg.Timeout {
		opt.DialTimeout = cfg.Timeout
	}
	c := goredis.NewClusterClient(opt)
	return c, c, nil
}

// parseClusterURL reads "[user:password@]host1:port1,host2:port2[/][?query]"
// after the scheme (redis or rediss): go-redis parses the credentials,
// TLS and query from the URL with the first address, and every address
// becomes a seed.
func parseClusterURL(scheme, rest string) (*goredis.ClusterOptions, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if p, _, _ := strings.Cut(tail, "?"); p != "" && p != "/" && p != "/0" {
		return nil, fmt.Errorf("redis cluster URL: database %q: a cluster has only database 0", p)
	}
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, fmt.Errorf("redis cluster URL: empty address in %q", hosts)
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "6379")
		}
		addrs = append(addrs, h)
	}
	opt, err := goredis.ParseClusterURL(scheme + "://" + userinfo + addrs[0] + strings.TrimPrefix(tail, "/0"))
	if err != nil {
		return nil, err
	}
	opt.Addrs = addrs
	return opt, nil
}

// subscribeTopic subscribes topic's channel on the pub/sub connection that
// carries it and returns that connection: the one started by New with one
// Redis; in cluster mode the one to the master owning the channel's slot,
// started here with its first channel (a cluster PubSub connects to the
// owner of its first channel's slot, to a random node without one). Call
// with cmdMu held: it serializes the starts.
func (e *Engine) subscribeTopic(ctx context.Context, topic string) (*shard, error) {
	channel := e.channel(topic)
	if e.cluster == nil {
		// Batched: subscribeLoop sends what piled up meanwhile in one
		// SUBSCRIBE; the Listen waits for the confirmation either way.
		e.mu.Lock()
		e.pending = append(e.pending, channel)
		e.mu.Unlock()
		select {
		case e.kick <- struct{}{}:
		default:
		}
		return e.shardList()[0], nil
	}
	c, err := e.cluster.MasterForKey(ctx, channel)
	if err != nil {
		return nil, err
	}
	addr := c.Options().Addr
	e.mu.Lock()
	sh, closed := e.shards[addr], e.closed
	e.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if sh != nil {
		return sh, sh.ps.SSubscribe(ctx, channel)
	}
	// A failed SSUBSCRIBE is remembered: Receive reconnects and sends it.
	sh = &shard{addr: addr, ps: e.cluster.SSubscribe(ctx, channel)}
	return sh, e.startShard(sh)
}

// startShard adds sh to the engine's connections and starts its
// receiveLoop, or closes it when the engine is closed.
func (e *Engine) startShard(sh *shard) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		_ = sh.ps.Close()
		return errClosed
	}
	e.shards[sh.addr] = sh
	e.wg.Add(1)
	go e.receiveLoop(sh)
	return nil
}

// unsubscribe unsubscribes sh from channels: with one Redis in one
// command, in cluster mode one SUNSUBSCRIBE per channel (Redis refuses one
// whose channels hash to several slots). Call with cmdMu held.
func (e *Engine) unsubscribe(ctx context.Context, sh *shard, channels []string) error {
	if e.cluster == nil {
		return sh.ps.Unsubscribe(ctx, channels...)
	}
	var errs []error
	for _, ch := range channels {
		errs = append(errs, sh.ps.SUnsubscribe(ctx, ch))
	}
	return errors.Join(errs...)
}

// resubscribe subscribes sh again to each of its topics' channels, one
// SSUBSCRIBE each. go-redis resubscribes a reconnected PubSub with one
// SSUBSCRIBE of all its channels, which Redis Cluster refuses (CROSSSLOT)
// when they lie in several slots of the master; receiveLoop then calls
// this. The confirmations resynchronize the topics as after any reconnect.
func (e *Engine) resubscribe(sh *shard) {
	e.cmdMu.Lock()
	defer e.cmdMu.Unlock()
	e.mu.Lock()
	var channels []string
	for topic, l := range e.topics {
		if l.sh == sh {
			channels = append(channels, e.channel(topic))
		}
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
	defer cancel()
	for _, ch := range channels {
		if err := sh.ps.SSubscribe(ctx, ch); err != nil {
			return // the connection failed again: receiveLoop sees it
		}
	}
}

// isCrossSlot reports whether err is Redis Cluster's CROSSSLOT error.
func isCrossSlot(err error) bool {
	return strings.HasPrefix(err.Error(), "CROSSSLOT")
}

// pingShards checks the command connections (every master in cluster
// mode) and pings each pub/sub connection; its pong, read by receiveLoop,
// clears the shard's error.
func (e *Engine) pingShards(ctx context.Context) error {
	var err error
	if e.cluster != nil {
		err = e.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = e.rdb.Ping(ctx).Err()
	}
	for _, sh := range e.shardList() {
		_ = sh.ps.Ping(ctx)
	}
	return err
}

// shardList returns the engine's pub/sub connections.
func (e *Engine) shardList() []*shard {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*shard, 0, len(e.shards))
	for _, sh := range e.shards {
		out = append(out, sh)
	}
	return out
}
