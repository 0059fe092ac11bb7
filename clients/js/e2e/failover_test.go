package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
)

// TestFailover: a page subscribes through wspush.js to a 2-node cluster
// whose nodes share one port (--reuseport) and a Redis; the node the page
// is on is SIGKILLed while the other keeps publishing; the client
// reconnects, lands on the survivor, resumes with since from the shared
// history, and the page sees every seq 1..total exactly once, in order.
func TestFailover(t *testing.T) {
	const (
		before = 20 // published with the page on the victim
		away   = 15 // published while the page is disconnected
		total  = 50 // the rest are published live on the survivor
	)
	b := newBrowser(t)
	redis := redistest.Start(t)
	common := []string{"--reuseport", "--broker", redis.URL(), "--history-size", "1000"}
	first := startNode(t, append(common, "--node-name", "first")...)
	second := startNode(t, append(common, "--node-name", "second", "--listen", first.ws)...)
	openTestPage(t, b, first)

	eval[bool](t, b, fmt.Sprintf(`(async () => {
  window.client = new wspush.WspushClient('ws://%s/ws', {
    WebSocket: Rec, minDelay: 50, maxDelay: 200,
    token: async () => { if (window.gate) await window.gate; return undefined; },
    onstate: (state, detail) => trace.states.push([state, detail.code ?? null]),
  });
  const sub = client.subscribe('failover', (data, meta) => trace.seen.push([meta.seq, data.n]),
    { onReset: (info) => trace.resets.push(info) });
  await sub.ready;
  return true;
})()`, first.ws))

	// The page's one WebSocket is on one of the nodes: that one dies.
	victim, survivor := nodeOfPage(t, first, second)
	publishRange := func(from, to int) []int { return publishSeqs(t, survivor, "failover", from, to) }
	publishRange(1, before)
	b.waitFor(t, "the first deliveries", fmt.Sprintf(`trace.seen.length === %d`, before))

	// Hold the reconnect so that some publishes certainly happen while the
	// page is away, then kill the node it is on.
	eval[bool](t, b, `window.hold(), true`)
	victim.kill(t)
	b.waitFor(t, "the client to see its node die", `client.state === 'connecting'`)
	for _, r := range publishRange(before+1, before+away) {
		if r != 0 {
			t.Fatalf("a publish reached %d subscribers on the survivor while the page was held away", r)
		}
	}
	eval[bool](t, b, `window.release(), true`)
	b.waitFor(t, "the reconnect", `client.state === 'open'`)
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := survivor.connections(t); n != 1 {
			return fmt.Errorf("the survivor has %d connections after the reconnect, want the page's", n)
		}
		return nil
	})
	publishRange(before+away+1, total)
	b.waitFor(t, "every seq", fmt.Sprintf(`trace.seen.length >= %d`, total))

	checkSeenOnce(t, b, total)
	eval[bool](t, b, `client.close(), true`)
}

// nodeOfPage finds which of two nodes holds the page's one WebSocket
// (wspush_connections) and returns it, then the other.
func nodeOfPage(t *testing.T, first, second *node) (on, other *node) {
	t.Helper()
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		a, b := first.connections(t), second.connections(t)
		switch {
		case a == 1 && b == 0:
			on, other = first, second
		case a == 0 && b == 1:
			on, other = second, first
		default:
			return fmt.Errorf("connections: %d on the first node, %d on the second; want the page's one", a, b)
		}
		return nil
	})
	return on, other
}

// publishSeqs publishes {"n":i} for i in from..to to a topic through n's
// API, checks each took seq i, and returns each publish's recipients.
func publishSeqs(t *testing.T, n *node, topic string, from, to int) []int {
	t.Helper()
	var recipients []int
	for i := from; i <= to; i++ {
		p := n.publish(t, topic, map[string]int{"n": i})
		if p.Seq != uint64(i) {
			t.Fatalf("publish %d took seq %d", i, p.Seq)
		}
		recipients = append(recipients, p.Recipients)
	}
	return recipients
}

// checkSeenOnce: the page saw seqs 1..total, each once, in order, each with
// its own data; no reset; and its client closed once abruptly and
// reconnected once.
func checkSeenOnce(t *testing.T, b *browser, total int) {
	t.Helper()
	seen := eval[[][2]int](t, b, `trace.seen`)
	want := make([][2]int, total)
	for i := range want {
		want[i] = [2]int{i + 1, i + 1}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("the page saw (seq, n) %v, want 1..%d once each, in order", seen, total)
	}
	if resets := eval[string](t, b, `JSON.stringify(trace.resets)`); resets != "[]" {
		t.Fatalf("resets %s, want none: history held everything missed", resets)
	}
	states := eval[string](t, b, `JSON.stringify(trace.states)`)
	if want := `[["open",null],["connecting",1006],["open",null]]`; states != want {
		t.Fatalf("states %s, want %s (one abrupt close, one reconnect)", states, want)
	}
}
