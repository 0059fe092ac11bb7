package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wspush/wspush/internal/testutil"
)

// logHas is a predicate: a row of the demo page's delivery log has this
// topic and data containing text, with a latency in ms (the data carried
// a timestamp).
func logHas(topic, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#log tr')].some((r) =>
  r.cells[1].textContent === %q && r.cells[3].textContent.includes(%q) && / ms$/.test(r.cells[4].textContent))`, topic, text)
}

// TestDemo: wspushd --demo --client-publish serves the demo page at /; in
// Chromium it connects, subscribes through its form, publishes through
// its form, and shows the delivery with its latency; a publish through the
// API shows up too; the unsubscribe button removes the subscription on the
// server. With -screenshot it saves the page with a few deliveries.
func TestDemo(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "--demo", "--client-publish")
	b.do(t, chromedp.Navigate("http://"+n.ws+"/"))
	b.waitFor(t, "the demo to connect", `document.getElementById('state').textContent === 'open'`)

	b.do(t,
		chromedp.SetValue(chromedp.ID("topic"), "news"),
		chromedp.Click(chromedp.ID("subscribe")),
	)
	b.waitFor(t, "the subscription's ack", `document.querySelectorAll('#subs button:not(.pending)').length === 1`)
	b.do(t,
		chromedp.SetValue(chromedp.ID("pub-topic"), "news"),
		chromedp.SetValue(chromedp.ID("pub-msg"), "hello from chromium"),
		chromedp.Click(chromedp.ID("publish")),
	)
	b.waitFor(t, "the form's publish to be delivered", logHas("news", "hello from chromium"))
	b.waitFor(t, "the publish's ack", `document.getElementById('pub-status').textContent === 'published to news'`)

	n.publish(t, "news", json.RawMessage(fmt.Sprintf(`{"t":%d,"msg":"from the API"}`, time.Now().UnixMilli())))
	b.waitFor(t, "the API's publish to be delivered", logHas("news", "from the API"))

	if *screenshot != "" {
		saveScreenshot(t, b, n)
	}

	for left := eval[int](t, b, `document.querySelectorAll('#subs button').length`); left > 0; left-- {
		b.do(t, chromedp.Click(chromedp.CSS("#subs button")))
		b.waitFor(t, "an unsubscribe button to go", fmt.Sprintf(`document.querySelectorAll('#subs button').length === %d`, left-1))
	}
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v, err := n.metric("wspush_topics"); err != nil || v != 0 {
			return fmt.Errorf("wspush_topics %v (%v), want 0 after the unsubscribe", v, err)
		}
		return nil
	})
	if state := eval[string](t, b, `document.getElementById('reconnects').textContent`); state != "0" {
		t.Fatalf("reconnects %s, want 0", state)
	}
}

// TestDemoPublishDisabled: without --client-publish the demo's publish form
// shows the server's "disabled" error.
func TestDemoPublishDisabled(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "--demo")
	b.do(t, chromedp.Navigate("http://"+n.ws+"/"))
	b.waitFor(t, "the demo to connect", `document.getElementById('state').textContent === 'open'`)
	b.do(t, chromedp.Click(chromedp.ID("publish")))
	b.waitFor(t, "the disabled error", `document.getElementById('pub-status').textContent.startsWith('disabled: ')`)
}

// saveScreenshot adds a subscription and a few more deliveries to the demo
// page and saves a PNG of it to the -screenshot file.
func saveScreenshot(t *testing.T, b *browser, n *node) {
	t.Helper()
	b.do(t,
		chromedp.SetValue(chromedp.ID("topic"), "scores"),
		chromedp.Click(chromedp.ID("subscribe")),
	)
	b.waitFor(t, "the second subscription's ack", `document.querySelectorAll('#subs button:not(.pending)').length === 2`)
	for i, score := range []string{"1-0", "1-1", "2-1", "2-2", "3-2", "4-2", "4-3", "5-3"} {
		n.publish(t, "scores", json.RawMessage(fmt.Sprintf(`{"t":%d,"match":"A-B","score":%q}`, time.Now().UnixMilli(), score)))
		b.waitFor(t, "a score", fmt.Sprintf(`document.querySelectorAll('#log tr').length === %d`, 3+i))
	}
	b.do(t,
		chromedp.SetValue(chromedp.ID("pub-msg"), "breaking: wspush in a browser"),
		chromedp.Click(chromedp.ID("publish")),
	)
	b.waitFor(t, "the last publish", logHas("news", "breaking"))
	b.do(t, chromedp.EmulateViewport(1000, 700))
	png := run(t, b, chromedp.CaptureScreenshot())
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s (%d bytes)", *screenshot, len(png))
}
