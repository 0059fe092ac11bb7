package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/engine/enginetest"
	"github.com/wspush/wspush/engine/redis"
	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
)

// clusterURL names the cluster c by all its addresses.
func clusterURL(c *redistest.Cluster) string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/"
}

// TestClusterEngineSuite runs the shared engine suite against a real
// 3-master Redis Cluster.
func TestClusterEngineSuite(t *testing.T) {
	url := clusterURL(redistest.StartCluster(t, 3))
	enginetest.Run(t, func(t *testing.T, o enginetest.Options, h engine.Handler) engine.Engine {
		e, err := redis.New(redis.Config{URL: url, HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL}, h)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

// TestClusterURL: a cluster URL with a bad address list or a database
// other than 0 is refused; one seed address is enough.
func TestClusterURL(t *testing.T) {
	for _, url := range []string{"redis+cluster://127.0.0.1:1,,127.0.0.1:2/", "redis+cluster://127.0.0.1:1/3", "redis+cluster://127.0.0.1:1/?nope=1"} {
		if e, err := redis.New(redis.Config{URL: url}, enginetest.NewRecorder()); err == nil {
			e.Close()
			t.Errorf("New(%q) = nil error", url)
		}
	}
	c := redistest.StartCluster(t, 3)
	e := newEngine(t, "redis+cluster://user:@"+c.Addrs()[1], enginetest.NewRecorder())
	if _, err := e.Publish(context.Background(), "one-seed", []byte("1")); err != nil {
		t.Fatalf("Publish through one seed address: %v", err)
	}
}

// clusterTopics returns n topics and checks that their channels are owned
// by at least two masters, so the engines use several pub/sub connections.
func clusterTopics(t *testing.T, c *redistest.Cluster, n int) []string {
	t.Helper()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	owners := make(map[string]bool)
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic%d", i)
		m, err := cc.MasterForKey(context.Background(), redis.DefaultPrefix+":{"+topics[i]+"}")
		if err != nil {
			t.Fatal(err)
		}
		owners[m.Options().Addr] = true
	}
	if len(owners) < 2 {
		t.Fatalf("%d topics on %d masters, want several", n, len(owners))
	}
	return topics
}

// TestClusterTwoNodes: two engines on a cluster listen to 20 topics spread
// over the masters; publishes alternate between them, and both see every
// topic's publications once, in one seq order.
func TestClusterTwoNodes(t *testing.T) {
	const each = 10
	c := redistest.StartCluster(t, 3)
	topics := clusterTopics(t, c, 20)
	r1, r2 := enginetest.NewRecorder(), enginetest.NewRecorder()
	e1, e2 := newEngine(t, clusterURL(c), r1), newEngine(t, clusterURL(c), r2)
	ctx := context.Background()
	epochs := make(map[string]string)
	for _, topic := range topics {
		p1, err1 := e1.Listen(ctx, topic)
		p2, err2 := e2.Listen(ctx, topic)
		if err1 != nil || err2 != nil || p1 != p2 {
			t.Fatalf("%s: positions %+v and %+v, %v %v: want the same", topic, p1, p2, err1, err2)
		}
		epochs[topic] = p1.Epoch
	}
	for i := range each {
		for j, topic := range topics {
			e := []*redis.Engine{e1, e2}[(i+j)%2]
			if _, err := e.Publish(ctx, topic, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range []*enginetest.Recorder{r1, r2} {
		for _, topic := range topics {
			for i, p := range r.Wait(t, topic, each, 5*time.Second) {
				if p.Pos.Seq != uint64(i+1) || p.Pos.Epoch != epochs[topic] || string(p.Data) != fmt.Sprint(i) {
					t.Fatalf("%s: publication %d = %+v %q", topic, i, p.Pos, p.Data)
				}
			}
		}
	}
}

// TestClusterPubSubReconnect: when the masters drop the node's pub/sub
// connections, the engine resubscribes every topic (one SSUBSCRIBE per
// channel, as Redis refuses one across slots), tells the Handler each
// topic's position, and live publications arrive again.
func TestClusterPubSubReconnect(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	topics := clusterTopics(t, c, 20)
	r := enginetest.NewRecorder()
	e := newEngine(t, clusterURL(c), r)
	ctx := context.Background()
	for _, topic := range topics {
		if _, err := e.Listen(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range c.Addrs() {
		m := goredis.NewClient(&goredis.Options{Addr: addr})
		err := m.ClientKillByFilter(ctx, "TYPE", "pubsub").Err()
		m.Close()
		if err != nil {
			t.Fatalf("CLIENT KILL on %s: %v", addr, err)
		}
	}
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := e.Stats().Resyncs.Load(); n < int64(len(topics)) {
			return fmt.Errorf("%d resyncs after the pub/sub connections dropped, want %d", n, len(topics))
		}
		return nil
	})
	for _, topic := range topics {
		if _, err := e.Publish(ctx, topic, []byte("after")); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range topics {
		if p := r.Wait(t, topic, 1, 5*time.Second)[0]; p.Pos.Seq != 1 || string(p.Data) != "after" {
			t.Fatalf("%s: %+v %q after the reconnect", topic, p.Pos, p.Data)
		}
	}
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, e.Healthy)
}
