package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

const userSecret = "user-stream-secret"

// epochMembers matches the epoch members of an API answer.
var epochMembers = regexp.MustCompile(`"epoch":"[A-Za-z0-9_-]{1,32}"`)

// userToken signs an HS256 token for sub (no sub when empty) that allows
// topics a and b.
func userToken(t *testing.T, sub string) string {
	t.Helper()
	c := claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Topics: []string{"a", "b"}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(userSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// postAPI POSTs body to path on s's API and returns the status and body.
func postAPI(t *testing.T, s *Server, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+s.APIAddr().String()+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readUser reads n deliveries of user's stream and returns their seqs.
func readUser(t *testing.T, c *wstest.Client, user string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for len(seqs) < n {
		r := readReply(t, c)
		if r.User != user || r.Topic != "" || r.Op != "" {
			t.Fatalf("after %d deliveries of user %s: got %+v", len(seqs), user, r)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// TestUserStream: a connection whose token has a sub gets that user's
// publishes, with positions and recovery like a topic's; a token without a
// sub gets none, a sub that is no user id is refused, and no client can
// name a user's stream in a command.
func TestUserStream(t *testing.T) {
	s := startServer(t, Config{JWTSecret: userSecret, HistorySize: 10})
	const ann = "ann@example.com"
	c := dial(t, s, "/ws?topics=a&positions=1&token="+userToken(t, ann))
	r := readReply(t, c)
	if r.Op != "subscribed" || len(r.Positions) != 2 || r.Positions["@"+ann].Epoch == "" || r.Positions["@"+ann].Seq != 0 {
		t.Fatalf("first frame %+v, want the user's stream and a", r)
	}
	plain := dial(t, s, "/ws?token="+userToken(t, ann)) // a second tab, v1 style
	bob := dial(t, s, "/ws?token="+userToken(t, "bob"))
	st, body := postAPI(t, s, "/api/publish", `{"user":"`+ann+`","data":{"n":1}}`)
	if st != 200 || !strings.Contains(body, `"seq":1,`) || !strings.Contains(body, `"recipients":2`) {
		t.Fatalf("user publish: %d %s", st, body)
	}
	for _, cl := range []*wstest.Client{c, plain} {
		msg, err := cl.ReadText(readWait)
		if want := `{"user":"ann@example.com","seq":1,"data":{"n":1}}`; err != nil || msg != want {
			t.Fatalf("delivery %q, %v; want %s", msg, err, want)
		}
	}
	// Bob got nothing of Ann's: his first delivery is his own.
	postAPI(t, s, "/api/publish", `{"user":"bob","data":2}`)
	wantSeqs(t, readUser(t, bob, "bob", 1), 1, 1)

	// The stream is not a topic: commands cannot name it.
	c.WriteText(`{"op":"unsubscribe","topics":["@` + ann + `"],"id":7}`)
	if r := readReply(t, c); r.Op != "error" || r.Code != "bad_topic" {
		t.Fatalf("unsubscribe from the user's stream: %+v", r)
	}

	// Resume at connect from seq 1 after two more.
	epoch := r.Positions["@"+ann].Epoch
	c.Close()
	postAPI(t, s, "/api/publish", `{"user":"`+ann+`","data":2}`)
	postAPI(t, s, "/api/publish", `{"user":"`+ann+`","data":3}`)
	c2 := dial(t, s, "/ws?since=@"+ann+":"+epoch+":1&token="+userToken(t, ann))
	if r := readReply(t, c2); r.Op != "subscribed" || !r.Recovered["@"+ann] || r.Positions["@"+ann].Seq != 3 {
		t.Fatalf("resume: %+v", r)
	}
	wantSeqs(t, readUser(t, c2, ann, 2), 2, 3)

	tests := []struct {
		name, target string
		status       int
	}{
		{"another user's stream in since", "/ws?since=@bob:" + epoch + ":0&token=" + userToken(t, ann), 400},
		{"a sub that is no user id", "/ws?token=" + userToken(t, "a b"), 401},
		{"a user's stream in topics", "/ws?topics=@" + ann + "&token=" + userToken(t, ann), 400},
	}
	for _, tt := range tests {
		if st := dialStatus(t, s, tt.target, nil); st != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, st, tt.status)
		}
	}
	anon := dial(t, s, "/ws?positions=1&token="+userToken(t, ""))
	if r := readReply(t, anon); r.Op != "subscribed" || len(r.Positions) != 0 {
		t.Fatalf("a token without sub: %+v, want no stream", r)
	}
}

// TestDisconnectUser: POST /api/disconnect closes every connection of the
// user with 4001, and only those.
func TestDisconnectUser(t *testing.T) {
	s := startServer(t, Config{JWTSecret: userSecret})
	u1, u2 := dial(t, s, "/ws?token="+userToken(t, "42")), dial(t, s, "/ws?topics=a&token="+userToken(t, "42"))
	other := dial(t, s, "/ws?token="+userToken(t, "7"))
	if st, body := postAPI(t, s, "/api/disconnect", `{"user":"42"}`); st != 200 || body != "{\"closed\":2}\n" {
		t.Fatalf("disconnect: %d %q", st, body)
	}
	for i, c := range []*wstest.Client{u1, u2} {
		cf, err := c.ExpectClose(readWait)
		if err != nil || cf.Code != 4001 || cf.Reason != "disconnected by server" {
			t.Fatalf("connection %d of user 42: close %+v, %v; want 4001", i+1, cf, err)
		}
	}
	postAPI(t, s, "/api/publish", `{"user":"7","data":1}`)
	wantSeqs(t, readUser(t, other, "7", 1), 1, 1)
	metrics := get(t, "http://"+s.APIAddr().String()+"/metrics", 200)
	if !strings.Contains(metrics, "wspush_user_disconnects_total 2\n") {
		t.Fatalf("metrics: %s", grepLines(metrics, "disconnect"))
	}
	for _, body := range []string{`{}`, `{"user":"a/b"}`, `[]`} {
		if st, _ := postAPI(t, s, "/api/disconnect", body); st != 400 {
			t.Errorf("disconnect %s: status %d, want 400", body, st)
		}
	}
	if st, body := postAPI(t, s, "/api/disconnect", `{"user":"nobody"}`); st != 200 || body != "{\"closed\":0}\n" {
		t.Fatalf("disconnect of nobody: %d %q", st, body)
	}
}

// TestPublishManyTopics: one call publishes to each topic with its own seq,
// and the answer lists them in order.
func TestPublishManyTopics(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws?topics=a,b")
	publish(t, s, "b", "0")
	st, body := postAPI(t, s, "/api/publish", `{"topics":["a","b","c"],"data":{"x":1}}`)
	want := `{"results":[{"topic":"a","seq":1,"epoch":"E","recipients":1},{"topic":"b","seq":2,"epoch":"E","recipients":1},{"topic":"c","seq":1,"epoch":"E","recipients":0}]}`
	if st != 200 || epochMembers.ReplaceAllString(body, `"epoch":"E"`) != want+"\n" {
		t.Fatalf("publish: %d %s\nwant %s", st, body, want)
	}
	got := map[string]uint64{}
	for range 3 {
		r := readReply(t, c)
		got[r.Topic] = r.Seq
	}
	if got["a"] != 1 || got["b"] != 2 || len(got) != 2 {
		t.Fatalf("deliveries %v, want b:0 then a:1 and b:2", got)
	}
	if st, body := postAPI(t, s, "/api/publish", `{"topics":["a","a"],"data":1}`); st != 400 || !strings.Contains(body, "twice") {
		t.Fatalf("duplicate topic: %d %s", st, body)
	}
}

// TestClusterUsers: a user publish made on one node reaches the user's
// connections on every node, and a disconnect asked of one node closes
// them on every node. With Redis down both answer 503 and say what was
// done.
func TestClusterUsers(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startNodes(t, 2, rs.URL(), Config{JWTSecret: userSecret, EngineTimeout: time.Second})
	for i, n := range nodes {
		testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if _, _, ok := n.hub.Position(controlTopic); !ok {
				return fmt.Errorf("node %d does not listen to the control topic yet", i+1)
			}
			return nil
		})
	}
	on1, on2 := dial(t, nodes[0], "/ws?token="+userToken(t, "42")), dial(t, nodes[1], "/ws?token="+userToken(t, "42"))
	if st, body := postAPI(t, nodes[1], "/api/publish", `{"user":"42","data":"hi"}`); st != 200 {
		t.Fatalf("user publish: %d %s", st, body)
	}
	for _, c := range []*wstest.Client{on1, on2} {
		wantSeqs(t, readUser(t, c, "42", 1), 1, 1)
	}
	if st, body := postAPI(t, nodes[1], "/api/disconnect", `{"user":"42"}`); st != 200 || body != "{\"closed\":1}\n" {
		t.Fatalf("disconnect on node 2: %d %q", st, body)
	}
	for i, c := range []*wstest.Client{on1, on2} {
		if cf, err := c.ExpectClose(readWait); err != nil || cf.Code != 4001 {
			t.Fatalf("the connection on node %d: close %+v, %v; want 4001", i+1, cf, err)
		}
	}
	again := dial(t, nodes[0], "/ws?topics=a&token="+userToken(t, "42"))
	rs.Stop()
	if st, body := postAPI(t, nodes[0], "/api/disconnect", `{"user":"42"}`); st != 503 || !strings.Contains(body, "closed 1 connections on this node") {
		t.Fatalf("disconnect with Redis down: %d %s", st, body)
	}
	if cf, err := again.ExpectClose(readWait); err != nil || cf.Code != 4001 {
		t.Fatalf("local close with Redis down: %+v, %v", cf, err)
	}
	st, body := postAPI(t, nodes[0], "/api/publish", `{"topics":["a","b"],"data":1}`)
	if st != 503 || strings.Count(body, `"error":"internal"`) != 2 {
		t.Fatalf("multi-topic publish with Redis down: %d %s", st, body)
	}
}

// TestControlAfterRedisComesBack: a node started while Redis is down
// listens to the control topic once Redis is back (the background loop
// retries), so a disconnect asked of another node reaches it.
func TestControlAfterRedisComesBack(t *testing.T) {
	rs := redistest.Start(t)
	rs.Stop()
	late := startServer(t, Config{Broker: rs.URL(), JWTSecret: userSecret, EngineTimeout: 300 * time.Millisecond})
	// Its first try at the control topic fails (Redis is down).
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !late.ctl.failing.Load() {
			return errors.New("the control topic's subscribe has not failed yet")
		}
		return nil
	})
	if _, _, ok := late.hub.Position(controlTopic); ok {
		t.Fatal("listening to the control topic with Redis down")
	}
	rs.Restart(t)
	other := startServer(t, Config{Broker: rs.URL(), JWTSecret: userSecret, EngineTimeout: time.Second})
	for _, n := range []*Server{late, other} {
		testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if _, _, ok := n.hub.Position(controlTopic); !ok {
				return fmt.Errorf("node %s does not listen to the control topic", n.cfg.NodeName)
			}
			return nil
		})
	}
	c := dial(t, late, "/ws?token="+userToken(t, "42"))
	if st, body := postAPI(t, other, "/api/disconnect", `{"user":"42"}`); st != 200 || body != "{\"closed\":0}\n" {
		t.Fatalf("disconnect on the other node: %d %q", st, body)
	}
	if cf, err := c.ExpectClose(readWait); err != nil || cf.Code != 4001 {
		t.Fatalf("the late node's connection: close %+v, %v; want 4001", cf, err)
	}
}
