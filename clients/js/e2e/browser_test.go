package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wspush/wspush/internal/testutil"
)

// actionTimeout bounds one browser action (a navigation, a script, a
// click); waitTimeout one wait for the page to reach a state.
const (
	actionTimeout = 30 * time.Second
	waitTimeout   = 20 * time.Second
)

// browser is one tab of a headless Chromium of its own.
type browser struct {
	ctx     context.Context // the tab's chromedp context, browser started
	console *testutil.SyncBuffer
}

// newBrowser starts a headless Chromium (no sandbox: the tests may run as
// root; a fresh profile in the test's temp dir) with a 1000x700 window. It
// is stopped at cleanup; when the test failed, what the page wrote to its
// console is logged.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(testutil.RequireCommand(t, "chromium", "run scripts/deps.sh as root (or make test), or: apt-get install -y chromium")),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{ctx: ctx, console: &testutil.SyncBuffer{}}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", b.console.String())
		}
	})
	return b
}

// record keeps the page's console output and uncaught exceptions. It runs
// on chromedp's reading goroutine, so it only appends.
func (b *browser) record(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		fmt.Fprintf(b.console, "%s: %s\n", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		fmt.Fprintf(b.console, "exception at %s:%d: %s\n", d.URL, d.LineNumber, desc)
	}
}

// do runs browser actions, each run bounded by actionTimeout.
func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// run runs one browser action that returns a value, bounded by
// actionTimeout.
func run[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	return run(t, b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitFor polls a JavaScript predicate in the page until it is true, at
// most waitTimeout; on time out the test fails with what and the value of
// the page's window.trace (the tests' record of what the page saw).
func (b *browser) waitFor(t *testing.T, what, predicate string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		trace := eval[string](t, b, `JSON.stringify(window.trace ?? null)`)
		t.Fatalf("waiting for %s (%s): %v\nwindow.trace: %s", what, predicate, err, trace)
	}
}

// testPage is the page of the client tests: it loads wspush.js from the
// URL in its query (the node's GET /wspush.js) as window.wspush, and sets
// up window.trace, where the tests' scripts record what the client does,
// and window.Rec, a WebSocket that keeps every socket in window.sockets.
// window.hold() makes the next connect wait (a token function awaits
// window.gate) until window.release().
const testPage = `<!doctype html>
<meta charset="utf-8">
<title>wspush e2e</title>
<script type="module">
window.trace = { seen: [], resets: [], states: [], user: [] };
window.sockets = [];
window.Rec = class extends WebSocket {
  constructor(url) { super(url); window.sockets.push(this); }
};
window.gate = null;
window.hold = () => { window.gate = new Promise((resolve) => { window.release = resolve; }); };
window.wspush = await import(new URLSearchParams(location.search).get('client'));
</script>
`

// openTestPage serves testPage from a local HTTP server and opens it in b,
// with the client loaded from n; it returns once window.wspush is there.
func openTestPage(t *testing.T, b *browser, n *node) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, testPage)
	}))
	t.Cleanup(srv.Close)
	b.do(t, chromedp.Navigate(srv.URL+"/?client="+url.QueryEscape("http://"+n.ws+"/wspush.js")))
	b.waitFor(t, "wspush.js to load", `typeof window.wspush === 'object'`)
}
