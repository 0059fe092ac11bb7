package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// userToken is an HS256 connect token for user sub, valid for an hour.
func userToken(t *testing.T, secret, sub string, topics ...string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "topics": topics, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestUserStream: a page connects with a token whose sub is a user; a
// POST /api/publish {"user":...} reaches its onuser; messages published
// while the page is away (its reconnect held) arrive after the reconnect,
// once each, in order; POST /api/disconnect closes it with 4001 and the
// client stays closed.
func TestUserStream(t *testing.T) {
	const secret, user = "e2e-secret", "user-42@example.com"
	b := newBrowser(t)
	n := startNode(t, "--jwt-secret", secret, "--history-size", "100")
	openTestPage(t, b, n)
	eval[bool](t, b, fmt.Sprintf(`(async () => {
  window.client = new wspush.WspushClient('ws://%s/ws', {
    WebSocket: Rec, minDelay: 50, maxDelay: 200,
    token: async () => { if (window.gate) await window.gate; return %q; },
    onstate: (state, detail) => trace.states.push([state, detail.code ?? null, detail.reason ?? null]),
    onuser: (data, meta) => trace.user.push([meta.seq, data.n]),
    onuserreset: (info) => trace.resets.push(info),
  });
  return true;
})()`, n.ws, userToken(t, secret, user, "news")))
	b.waitFor(t, "the user stream", fmt.Sprintf(`client.user === %q && client.state === 'open'`, user))

	publishUser := func(i int) published {
		var p published
		n.post(t, "/api/publish", map[string]any{"user": user, "data": map[string]int{"n": i}}, &p)
		return p
	}
	if p := publishUser(1); p.Seq != 1 || p.Recipients != 1 {
		t.Fatalf("publish to the user: %+v, want seq 1 to the page's 1 connection", p)
	}
	b.waitFor(t, "the first user message", `trace.user.length === 1`)

	// Away: the page drops its socket (a client close, 3000: it reconnects)
	// and its reconnect is held while two messages are published.
	eval[bool](t, b, `window.hold(), sockets[0].close(3000), true`)
	b.waitFor(t, "the client to see the close", `client.state === 'connecting'`)
	for i := 2; i <= 3; i++ {
		if p := publishUser(i); p.Recipients != 0 {
			t.Fatalf("publish %d reached %d connections while the page was away", i, p.Recipients)
		}
	}
	eval[bool](t, b, `window.release(), true`)
	b.waitFor(t, "the reconnect", `client.state === 'open'`)
	publishUser(4)
	b.waitFor(t, "4 user messages", `trace.user.length >= 4`)
	if got, want := eval[[][2]int](t, b, `trace.user`), [][2]int{{1, 1}, {2, 2}, {3, 3}, {4, 4}}; !slices.Equal(got, want) {
		t.Fatalf("onuser saw (seq, n) %v, want %v", got, want)
	}
	if since := eval[string](t, b, `new URL(sockets[1].url).searchParams.get('since')`); since != "@"+user+":"+eval[string](t, b, `client.userPosition.epoch`)+":1" {
		t.Fatalf("the reconnect's since = %q, want @%s:<epoch>:1", since, user)
	}

	checkDisconnected(t, b, n, user)
}

// checkDisconnected: POST /api/disconnect closes the page's connection of
// user with 4001, and the client stays closed.
func checkDisconnected(t *testing.T, b *browser, n *node, user string) {
	t.Helper()
	var closed struct{ Closed int }
	n.post(t, "/api/disconnect", map[string]string{"user": user}, &closed)
	if closed.Closed != 1 {
		t.Fatalf("disconnect closed %d connections, want the page's 1", closed.Closed)
	}
	b.waitFor(t, "the 4001 close", `client.state === 'closed'`)
	states := eval[string](t, b, `JSON.stringify(trace.states)`)
	if want := `[["open",null,null],["connecting",3000,""],["open",null,null],["closed",4001,"disconnected by server"]]`; states != want {
		t.Fatalf("states %s, want %s", states, want)
	}
	// Closed for good: nothing is scheduled, no socket was made after it.
	if sockets := eval[int](t, b, `sockets.length`); sockets != 2 {
		t.Fatalf("%d sockets, want 2", sockets)
	}
	if resets := eval[string](t, b, `JSON.stringify(trace.resets)`); resets != "[]" {
		t.Fatalf("user resets %s, want none", resets)
	}
}
