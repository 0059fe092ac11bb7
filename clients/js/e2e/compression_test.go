package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestCompression: Chromium negotiates permessage-deflate with wspushd
// --compression (as every browser offers it), gets compressed deliveries
// intact, and its own publish (a 2.7 KB message, which Chromium sends
// compressed once the extension is on) comes back through the server.
func TestCompression(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "--compression", "--client-publish")
	openTestPage(t, b, n)
	eval[bool](t, b, fmt.Sprintf(`(async () => {
  window.client = new wspush.WspushClient('ws://%s/ws', { WebSocket: Rec });
  const sub = client.subscribe('ticks', (data, meta) => trace.seen.push([meta.seq, JSON.stringify(data)]));
  sub.ready.then(() => { trace.acked = true; });
  return true;
})()`, n.ws))
	b.waitFor(t, "the subscription", `client.state === 'open' && trace.acked === true`)
	if ext := eval[string](t, b, `sockets[0].extensions`); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("Chromium negotiated %q, want permessage-deflate", ext)
	}
	big := map[string]string{"v": strings.Repeat("ABC 101.25 XYZ 99.50 ", 200)}
	n.publish(t, "ticks", big)
	eval[bool](t, b, fmt.Sprintf(`client.publish('ticks', {v: %q}).then(() => true)`, strings.Repeat("QRS 7.75 ", 300)))
	b.waitFor(t, "both deliveries", `trace.seen.length === 2`)
	seen := eval[[][2]any](t, b, `trace.seen`)
	if got := seen[0][1].(string); got != `{"v":"`+big["v"]+`"}` {
		t.Fatalf("first delivery: %d bytes, not the %d published", len(got), len(big["v"]))
	}
	if got := seen[1][1].(string); got != `{"v":"`+strings.Repeat("QRS 7.75 ", 300)+`"}` {
		t.Fatalf("the page's own publish came back as %d bytes", len(got))
	}
	if v, err := n.metric("wspush_messages_compressed_total"); err != nil || v < 2 {
		t.Fatalf("wspush_messages_compressed_total = %v, %v; want both deliveries compressed", v, err)
	}
}
