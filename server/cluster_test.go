package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wspush/wspush/engine/redis"
	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/wsconn"
)

// startNodes runs n servers that are one system through the Redis at url.
func startNodes(t *testing.T, n int, url string, cfg Config) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	for i := range nodes {
		c := cfg
		c.Broker = url
		c.NodeName = fmt.Sprintf("node%d", i+1)
		nodes[i] = startServer(t, c)
	}
	return nodes
}

// TestClusterEveryMessageOnce: subscribers on three nodes get every
// publish, made on any node, exactly once and in one seq order.
func TestClusterEveryMessageOnce(t *testing.T) {
	const perNode, msgs = 3, 30
	nodes := startNodes(t, 3, redistest.Start(t).URL(), Config{})
	var clients []*wstest.Client
	for _, n := range nodes {
		for range perNode {
			c := dial(t, n, "/ws?topics=c&positions=1")
			if r := readReply(t, c); r.Op != "subscribed" || r.Positions["c"].Seq != 0 {
				t.Fatalf("first frame %+v", r)
			}
			clients = append(clients, c)
		}
	}
	var epoch string
	for i := range msgs {
		r := publish(t, nodes[i%3], "c", fmt.Sprint(i+1))
		if r.Seq != uint64(i+1) || (epoch != "" && r.Epoch != epoch) {
			t.Fatalf("publish %d on node %d = %+v", i+1, i%3+1, r)
		}
		epoch = r.Epoch
	}
	for i, c := range clients {
		got := readDeliveries(t, c, "c", msgs)
		if got[0] != 1 {
			t.Fatalf("client %d: %v", i, got)
		}
		wantSeqs(t, got, 1, msgs)
	}
	// Every node received every publication from Redis: its delivery lag
	// histogram counted them.
	for i, n := range nodes {
		body := get(t, "http://"+n.APIAddr().String()+"/metrics", 200)
		if want := fmt.Sprintf("wspush_broker_delivery_lag_seconds_count %d", msgs); !strings.Contains(body, want) {
			t.Fatalf("node %d: want %q in:\n%s", i+1, want, grepLines(body, "lag"))
		}
	}
}

// TestClusterResumeOnAnotherNode: a client that read part of a topic on
// node 1 resumes on node 2 and gets exactly what it missed, then live.
func TestClusterResumeOnAnotherNode(t *testing.T) {
	nodes := startNodes(t, 3, redistest.Start(t).URL(), Config{HistorySize: 50})
	c := dial(t, nodes[0], "/ws?topics=m&positions=1")
	first := readReply(t, c)
	for i := range 5 {
		publish(t, nodes[i%3], "m", fmt.Sprint(i))
	}
	wantSeqs(t, readDeliveries(t, c, "m", 5), 1, 5)
	c.Close()
	for i := range 5 {
		publish(t, nodes[2], "m", fmt.Sprint(i))
	}
	c2 := dial(t, nodes[1], fmt.Sprintf("/ws?topics=m&since=m:%s:5", first.Positions["m"].Epoch))
	if r := readReply(t, c2); r.Op != "subscribed" || !r.Recovered["m"] || r.Positions["m"].Seq != 10 {
		t.Fatalf("resume on node 2: %+v", r)
	}
	live := publish(t, nodes[0], "m", `"live"`)
	wantSeqs(t, readDeliveries(t, c2, "m", 6), 6, live.Seq)
}

// TestClusterRedisRestart: with Redis down a node keeps its clients, is not
// ready, and answers publishes with 503 quickly; when Redis comes back
// empty, subscribers are told with a reset (a new run) and live delivery
// goes on from its first seq.
func TestClusterRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startNodes(t, 2, rs.URL(), Config{EngineTimeout: time.Second})
	subs := []*wstest.Client{dial(t, nodes[0], "/ws?topics=r"), dial(t, nodes[1], "/ws?topics=r")}
	before := publish(t, nodes[0], "r", `1`)
	for _, c := range subs {
		wantSeqs(t, readDeliveries(t, c, "r", 1), 1, 1)
	}
	goroutines := runtime.NumGoroutine()
	rs.Stop()
	start := time.Now()
	if st, body := postPublish(t, nodes[1], `{"topic":"r","data":2}`); st != http.StatusServiceUnavailable {
		t.Fatalf("publish with Redis down: %d %s, want 503", st, body)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("publish with Redis down took %v", el)
	}
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get("http://" + nodes[0].APIAddr().String() + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz = %d with Redis down", resp.StatusCode)
		}
		return nil
	})
	rs.Restart(t)
	testutil.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		body := get(t, "http://"+nodes[0].APIAddr().String()+"/healthz", 200)
		if !strings.Contains(body, "node1") {
			return fmt.Errorf("/healthz = %q", body)
		}
		resp, err := http.Get("http://" + nodes[0].APIAddr().String() + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz = %d after Redis came back", resp.StatusCode)
		}
		return nil
	})
	for i, c := range subs {
		r := readReply(t, c)
		if r.Op != "reset" || r.Topic != "r" || r.Positions["r"].Epoch == before.Epoch {
			t.Fatalf("client %d after an empty Redis restart: %+v, want a reset to a new run", i, r)
		}
	}
	after := publish(t, nodes[1], "r", `3`)
	if after.Epoch == before.Epoch || after.Seq != 1 {
		t.Fatalf("publish after the restart = %+v", after)
	}
	for _, c := range subs {
		wantSeqs(t, readDeliveries(t, c, "r", 1), 1, 1)
	}
	// Nothing piled up while Redis was away (retries are bounded loops,
	// not goroutines).
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := runtime.NumGoroutine(); n > goroutines+4 {
			return fmt.Errorf("%d goroutines after Redis came back, %d before it went", n, goroutines)
		}
		return nil
	})
}

// TestClusterGapFilledAfterReconnect: a node whose pub/sub connection drops
// misses what other nodes publish meanwhile; when it is back it fills the
// gap from the history stream, in place: its client sees every seq once,
// in order, and no reset.
func TestClusterGapFilledAfterReconnect(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startNodes(t, 2, rs.URL(), Config{HistorySize: 100})
	c := dial(t, nodes[0], "/ws?topics=g")
	publish(t, nodes[1], "g", `1`)
	wantSeqs(t, readDeliveries(t, c, "g", 1), 1, 1)
	admin := goredis.NewClient(&goredis.Options{Addr: rs.Addr()})
	defer admin.Close()
	if err := admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 6; i++ {
		publish(t, nodes[1], "g", fmt.Sprint(i))
	}
	eng := nodes[0].hub.Engine().(*redis.Engine)
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if eng.Stats().Resyncs.Load() == 0 {
			return errors.New("node 1 has not resynchronized yet")
		}
		return nil
	})
	last := publish(t, nodes[1], "g", `7`)
	got := readDeliveries(t, c, "g", int(last.Seq-1))
	wantSeqs(t, got, 2, last.Seq)
	t.Logf("gaps filled on node 1: %d", nodes[0].hub.GapsFilled())
	if n := nodes[0].hub.Resets(); n != 0 {
		t.Fatalf("%d resets: the gap was in the stream", n)
	}
}

// TestClusterResumeWhilePublishing: clients on two nodes resume while a
// third node publishes flat out; each sees every seq after its position
// once, in order: the history-to-live switch holds across nodes too.
func TestClusterResumeWhilePublishing(t *testing.T) {
	const total, clients = 600, 10
	nodes := startNodes(t, 3, redistest.Start(t).URL(), Config{HistorySize: total, Conn: wsconn.Config{SendQueue: 2 * total}})
	first := publish(t, nodes[2], "hot", `0`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < total; i++ {
			if _, err := nodes[2].publish("hot", []byte(fmt.Sprint(i))); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range clients {
		since := uint64(i * 20)
		c := dial(t, nodes[i%2], fmt.Sprintf("/ws?topics=hot&since=hot:%s:%d", first.Epoch, since))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := readReply(t, c); r.Op != "subscribed" || !r.Recovered["hot"] {
				t.Errorf("client %d: first frame %+v, want recovered", i, r)
				return
			}
			wantSeqs(t, readDeliveries(t, c, "hot", int(total-since)), since+1, total)
		}()
	}
	wg.Wait()
	<-done
}

// TestClusterOnRedisCluster: three nodes on a 3-master Redis Cluster, with
// subscribers on each node to topics on several masters; publishes made on
// every node reach every subscriber once, in seq order.
func TestClusterOnRedisCluster(t *testing.T) {
	const perTopic = 12
	rc := redistest.StartCluster(t, 3)
	nodes := startNodes(t, 3, "redis+cluster://"+strings.Join(rc.Addrs(), ",")+"/", Config{})
	topics := []string{"ca", "cb", "cc", "cd", "ce", "cf"}
	if n := mastersOf(t, rc, topics); n < 2 {
		t.Fatalf("topics on %d masters, want several", n)
	}
	query := "/ws?topics=" + strings.Join(topics, ",") + "&positions=1"
	var clients []*wstest.Client
	for _, n := range nodes {
		for range 2 {
			c := dial(t, n, query)
			if r := readReply(t, c); r.Op != "subscribed" || len(r.Positions) != len(topics) {
				t.Fatalf("first frame %+v", r)
			}
			clients = append(clients, c)
		}
	}
	for i := range perTopic {
		for j, topic := range topics {
			r := publish(t, nodes[(i+j)%3], topic, fmt.Sprint(i+1))
			if r.Seq != uint64(i+1) {
				t.Fatalf("publish %d to %s on node %d = %+v", i+1, topic, (i+j)%3+1, r)
			}
		}
	}
	for i, c := range clients {
		got := readAllDeliveries(t, c, len(topics)*perTopic)
		for _, topic := range topics {
			if len(got[topic]) != perTopic {
				t.Fatalf("client %d, topic %s: %v", i, topic, got[topic])
			}
			wantSeqs(t, got[topic], 1, perTopic)
		}
	}
}

// readAllDeliveries reads n deliveries, of any topics, and returns their
// seqs by topic.
func readAllDeliveries(t *testing.T, c *wstest.Client, n int) map[string][]uint64 {
	t.Helper()
	got := make(map[string][]uint64)
	for i := range n {
		r := readReply(t, c)
		if r.Op != "" || r.Topic == "" {
			t.Fatalf("after %d deliveries: got %+v", i, r)
		}
		got[r.Topic] = append(got[r.Topic], r.Seq)
	}
	return got
}

// mastersOf counts the masters of rc owning the topics' channels.
func mastersOf(t *testing.T, rc *redistest.Cluster, topics []string) int {
	t.Helper()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs()})
	defer cc.Close()
	owners := make(map[string]bool)
	for _, topic := range topics {
		m, err := cc.MasterForKey(context.Background(), redis.DefaultPrefix+":{"+topic+"}")
		if err != nil {
			t.Fatal(err)
		}
		owners[m.Options().Addr] = true
	}
	return len(owners)
}
