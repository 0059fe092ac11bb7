package hub_test

import (
	"sync"
	"testing"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/protocol"
)

// markSub records the queue policy of every frame it is sent, then
// releases the frame.
type markSub struct {
	id    int
	slow  []slowpolicy.Policy
	keys  []uint64
	count int
}

func (s *markSub) Send(f *bpool.Frame) bool {
	s.slow = append(s.slow, f.Slow)
	s.keys = append(s.keys, f.Conflate)
	s.count++
	f.Release()
	return true
}

// policyFunc is a Config.Policy that counts its calls per topic.
type policyFunc struct {
	byTopic map[string]slowpolicy.Policy
	mu      sync.Mutex
	calls   map[string]int
}

func (p *policyFunc) policy(topic string) slowpolicy.Policy {
	p.mu.Lock()
	p.calls[topic]++
	p.mu.Unlock()
	return p.byTopic[topic]
}

// TestTopicPolicyMarksFrames: the hub asks for a topic's policy once, when
// it creates the topic, and every frame of the topic carries it; a
// conflated topic's frames all carry one key of their own, not 0 and not
// another topic's.
func TestTopicPolicyMarksFrames(t *testing.T) {
	pf := &policyFunc{calls: map[string]int{}, byTopic: map[string]slowpolicy.Policy{
		"prices.a": slowpolicy.Conflate,
		"prices.b": slowpolicy.Conflate,
		"chat.x":   slowpolicy.Close,
		"feed":     slowpolicy.DropNewest,
	}}
	h := mustHub(hub.Config{Policy: pf.policy}, protocol.NewDeliveryFrame)
	tests := []struct {
		topic    string
		want     slowpolicy.Policy
		conflate bool
	}{
		{topic: "prices.a", want: slowpolicy.Conflate, conflate: true},
		{topic: "prices.b", want: slowpolicy.Conflate, conflate: true},
		{topic: "chat.x", want: slowpolicy.Close},
		{topic: "feed", want: slowpolicy.DropNewest},
		{topic: "plain", want: slowpolicy.Default},
	}
	keyOf := map[uint64]string{}
	for i, tt := range tests {
		subs := []*markSub{{id: 2 * i}, {id: 2*i + 1}}
		var tp *hub.Topic
		for _, s := range subs {
			tp = mustSubscribe(t, h, tt.topic, s)
		}
		if tp.Policy() != tt.want {
			t.Fatalf("%s: Topic.Policy() = %v, want %v", tt.topic, tp.Policy(), tt.want)
		}
		for range 3 {
			mustPublish(t, h, tt.topic, `1`)
		}
		if n := pf.calls[tt.topic]; n != 1 {
			t.Fatalf("%s: Policy called %d times, want once (at creation)", tt.topic, n)
		}
		key := subs[0].keys[0]
		for _, s := range subs {
			if s.count != 3 {
				t.Fatalf("%s: subscriber %d got %d frames, want 3", tt.topic, s.id, s.count)
			}
			for j := range s.count {
				if s.slow[j] != tt.want || s.keys[j] != key {
					t.Fatalf("%s: frame %d marked %v key %d, want %v key %d", tt.topic, j, s.slow[j], s.keys[j], tt.want, key)
				}
			}
		}
		if tt.conflate != (key != 0) {
			t.Fatalf("%s: key %d, want a key: %v", tt.topic, key, tt.conflate)
		}
		if key != 0 {
			if other, ok := keyOf[key]; ok {
				t.Fatalf("%s: key %d is %s's too", tt.topic, key, other)
			}
			keyOf[key] = tt.topic
		}
	}
}

// TestConflateKeyNewPerRun: a conflated topic created again (a new run)
// gets a new key, so that a queued frame of the old run is never taken
// for the new run's.
func TestConflateKeyNewPerRun(t *testing.T) {
	pf := &policyFunc{calls: map[string]int{}, byTopic: map[string]slowpolicy.Policy{"p": slowpolicy.Conflate}}
	h := mustHub(hub.Config{Policy: pf.policy}, protocol.NewDeliveryFrame)
	seen := map[uint64]bool{}
	for run := range 4 {
		s := &markSub{id: run}
		tp := mustSubscribe(t, h, "p", s)
		mustPublish(t, h, "p", `1`)
		if s.count != 1 || s.keys[0] == 0 || seen[s.keys[0]] {
			t.Fatalf("run %d: %d frames, key %v (seen %v); want one frame with a new key", run, s.count, s.keys, seen)
		}
		seen[s.keys[0]] = true
		tp.Unsubscribe(s)
	}
	if n := pf.calls["p"]; n != 4 {
		t.Fatalf("Policy called %d times for 4 runs, want 4", n)
	}
}
