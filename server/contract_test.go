package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
)

const readWait = 5 * time.Second

func TestUpgradeRules(t *testing.T) {
	s := startServer(t, Config{AllowedOrigins: []string{"https://app.example.com"}})
	tests := []struct {
		name   string
		target string
		header http.Header
		status int // 101 for success
	}{
		{"topics in query", "/ws?topics=a,b.c:d-e_f", nil, 101},
		{"no topics", "/ws", nil, 101},
		{"empty topic", "/ws?topics=a,,b", nil, 400},
		{"bad topic byte", "/ws?topics=a%20b", nil, 400},
		{"topic too long", "/ws?topics=" + strings.Repeat("x", 129), nil, 400},
		{"topic of 128 bytes", "/ws?topics=" + strings.Repeat("x", 128), nil, 101},
		{"wrong path", "/other", nil, 404},
		{"origin allowed", "/ws", http.Header{"Origin": {"https://app.example.com"}}, 101},
		{"origin refused", "/ws", http.Header{"Origin": {"https://evil.example.com"}}, 403},
		{"origin absent", "/ws", nil, 101},
		{"deflate offered", "/ws", http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"}}, 101},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := wstest.Dial(s.WSAddr().String(), tc.target, tc.header)
			if tc.status == 101 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				if ext := c.Resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
					t.Fatalf("extension negotiated: %q", ext)
				}
				return
			}
			if !errors.Is(err, wstest.ErrStatus) {
				t.Fatalf("err = %v, want refusal", err)
			}
			if c.Resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", c.Resp.StatusCode, tc.status)
			}
		})
	}
}

func TestMaxConnsRefusesWith503(t *testing.T) {
	s := startServer(t, Config{MaxConns: 2})
	dial(t, s, "/ws")
	dial(t, s, "/ws")
	c, err := wstest.Dial(s.WSAddr().String(), "/ws", nil)
	if !errors.Is(err, wstest.ErrStatus) || c.Resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third dial: err=%v, want 503", err)
	}
}

// TestSubscriptionsInPlaceBeforeUpgradeResponse: the query's subscriptions
// are made in Accept, before the 101 is written, so a publish made the
// moment the client has read its 101 reaches it. Reading a delivery later
// proves nothing (a subscription made after the 101 would be in place by
// then), so the test checks two things that only hold when the
// subscription comes first:
//   - a subscription that cannot be made refuses the upgrade (503): after
//     the 101 nothing could be refused any more;
//   - for many connections, the topic exists and an in-process publish
//     reaches the client as soon as dial has read the 101, with no HTTP
//     round trip in between for a late subscription to hide in.
func TestSubscriptionsInPlaceBeforeUpgradeResponse(t *testing.T) {
	t.Run("failed_subscription_refuses_upgrade", func(t *testing.T) {
		s := startServer(t, Config{Limits: Limits{MaxTopics: 1}})
		dial(t, s, "/ws?topics=full")
		if got := dialStatus(t, s, "/ws?topics=x", nil); got != http.StatusServiceUnavailable {
			t.Fatalf("upgrade whose subscription fails: status %d, want 503 before any 101", got)
		}
		if _, _, ok := s.Hub().Position("x"); ok {
			t.Fatal("refused upgrade left topic x behind")
		}
	})
	t.Run("publish_right_after_101_is_delivered", func(t *testing.T) {
		s := startServer(t, Config{})
		for i := 0; i < 50; i++ {
			topic := fmt.Sprint("x", i)
			c := dial(t, s, "/ws?topics="+topic)
			// dial returned: the 101 was read. Nothing else may be awaited.
			if _, n, ok := s.Hub().Position(topic); !ok || n != 0 {
				t.Fatalf("connection %d: topic after the 101: seq %d, exists %v; want 0, true", i, n, ok)
			}
			r, err := s.publish(topic, []byte(`1`))
			if err != nil || r.Recipients != 1 || r.Seq != 1 {
				t.Fatalf("connection %d: publish right after the 101 = %+v, %v; want seq 1 to 1 recipient", i, r, err)
			}
			want := fmt.Sprintf(`{"topic":%q,"seq":1,"data":1}`, topic)
			if got, err := c.ReadText(readWait); err != nil || got != want {
				t.Fatalf("connection %d: got %q, %v; want %s", i, got, err, want)
			}
			c.Close()
		}
	})
}

// reply is any server reply or delivery, decoded loosely.
type reply struct {
	Op      string          `json:"op"`
	ID      *int64          `json:"id"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Topic   string          `json:"topic"`
	User    string          `json:"user"` // a user's stream delivery or reset
	Seq     uint64          `json:"seq"`
	Data    json.RawMessage `json:"data"`
	// v1.1: subscribe acks, the subscribed frame, reset.
	Positions map[string]wirePos `json:"positions"`
	Recovered map[string]bool    `json:"recovered"`
}

// wirePos is a position as the protocol writes it.
type wirePos struct {
	Epoch    string `json:"epoch"`
	Seq      uint64 `json:"seq"`
	Conflate bool   `json:"conflate"` // a conflated topic's
}

// expectOnlyReply checks that nothing but deliveries is left before the
// reply to a barrier command with id barrier: the commands before it got
// exactly their one reply each.
func expectOnlyReply(t *testing.T, c *wstest.Client, barrier int64) {
	t.Helper()
	if err := c.WriteText(fmt.Sprintf(`{"op":"unsubscribe","topics":["barrier"],"id":%d}`, barrier)); err != nil {
		t.Fatal(err)
	}
	for {
		r := readReply(t, c)
		if r.Topic != "" {
			continue
		}
		if r.Op != "ack" || r.ID == nil || *r.ID != barrier {
			t.Fatalf("reply %+v before the barrier's ack %d: a command got a second reply", r, barrier)
		}
		return
	}
}

func readReply(t *testing.T, c *wstest.Client) reply {
	t.Helper()
	s, err := c.ReadText(readWait)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var r reply
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("reply %q: %v", s, err)
	}
	return r
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name      string
		clientPub bool
		send      string
		wantOp    string
		wantID    *int64
		wantCode  string
	}{
		{"subscribe with id", false, `{"op":"subscribe","topics":["a"],"id":1}`, "ack", ptr(1), ""},
		{"id zero is valid", false, `{"op":"subscribe","topics":["a"],"id":0}`, "ack", ptr(0), ""},
		{"unsubscribe with id", false, `{"op":"unsubscribe","topics":["a"],"id":2}`, "ack", ptr(2), ""},
		{"bad json", false, `{"op":`, "error", nil, "bad_json"},
		{"not an object", false, `[1,2]`, "error", nil, "bad_json"},
		{"unknown op", false, `{"op":"dance","id":7}`, "error", ptr(7), "unknown_op"},
		{"bad topic", false, `{"op":"subscribe","topics":["a b"],"id":8}`, "error", ptr(8), "bad_topic"},
		{"publish disabled", false, `{"op":"publish","topic":"a","data":1,"id":9}`, "error", ptr(9), "disabled"},
		{"publish enabled", true, `{"op":"publish","topic":"z","data":1,"id":10}`, "ack", ptr(10), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Config{ClientPublish: tc.clientPub})
			c := dial(t, s, "/ws")
			if err := c.WriteText(tc.send); err != nil {
				t.Fatal(err)
			}
			r := readReply(t, c)
			if r.Op != tc.wantOp || r.Code != tc.wantCode {
				t.Fatalf("reply = %+v, want op %q code %q", r, tc.wantOp, tc.wantCode)
			}
			switch {
			case tc.wantID == nil && r.ID != nil:
				t.Fatalf("reply has id %d, want none", *r.ID)
			case tc.wantID != nil && (r.ID == nil || *r.ID != *tc.wantID):
				t.Fatalf("reply id = %v, want %d", r.ID, *tc.wantID)
			}
			// The connection stays usable after any reply.
			if err := c.WriteText(`{"op":"subscribe","topics":["after"],"id":99}`); err != nil {
				t.Fatal(err)
			}
			if r := readReply(t, c); r.Op != "ack" || r.ID == nil || *r.ID != 99 {
				t.Fatalf("follow-up reply = %+v", r)
			}
		})
	}
}

func ptr(i int64) *int64 { return &i }

func TestCommandWithoutIDGetsNoAck(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	if err := c.WriteText(`{"op":"subscribe","topics":["q"]}`); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	testutil.CheckFor(t, readWait, 5*time.Millisecond, func() error {
		res, err := s.publish("q", []byte(`1`))
		if err != nil {
			return err
		}
		if res.Recipients == 0 {
			return errors.New("not subscribed yet")
		}
		seq = res.Seq
		return nil
	})
	// The first frame must be the delivery, not an ack.
	r := readReply(t, c)
	if r.Op != "" || r.Topic != "q" || r.Seq != seq {
		t.Fatalf("first frame = %+v, want the delivery of seq %d", r, seq)
	}
}

func TestAckPrecedesLaterDeliveries(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	if err := c.WriteText(`{"op":"subscribe","topics":["o"],"id":5}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); r.Op != "ack" || *r.ID != 5 {
		t.Fatalf("reply = %+v", r)
	}
	publish(t, s, "o", `{"k":"v"}`)
	if r := readReply(t, c); r.Topic != "o" || string(r.Data) != `{"k":"v"}` {
		t.Fatalf("delivery = %+v", r)
	}
	if err := c.WriteText(`{"op":"unsubscribe","topics":["o"],"id":6}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); r.Op != "ack" || *r.ID != 6 {
		t.Fatalf("reply = %+v", r)
	}
	if r := publish(t, s, "o", `2`); r.Recipients != 0 {
		t.Fatalf("recipients after unsubscribe = %d", r.Recipients)
	}
}

// TestClientPublishOneReplyAfterDelivery: a client publish with an id gets
// exactly one reply, after the publish went through, so a publisher that is
// subscribed sees its own delivery first.
func TestClientPublishOneReplyAfterDelivery(t *testing.T) {
	s := startServer(t, Config{ClientPublish: true})
	c := dial(t, s, "/ws?topics=chat")
	other := dial(t, s, "/ws?topics=chat")
	if err := c.WriteText(`{"op":"publish","topic":"chat","data":{"m":"hi"},"id":3}`); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*wstest.Client{c, other} {
		if r := readReply(t, cl); r.Topic != "chat" || r.Seq != 1 || string(r.Data) != `{"m":"hi"}` {
			t.Fatalf("delivery = %+v", r)
		}
	}
	if r := readReply(t, c); r.Op != "ack" || *r.ID != 3 {
		t.Fatalf("reply = %+v, want the ack", r)
	}
	expectOnlyReply(t, c, 4)
}

// TestBinaryFramesClose1003: commands are text; a binary data frame is
// unsupported data (RFC 6455 §7.4.1), not a command.
func TestBinaryFramesClose1003(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s, "/ws")
	if err := c.Write(wstest.Frame{Op: ws.OpBinary, Payload: []byte(`{"op":"subscribe","topics":["b"],"id":4}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadText(readWait)
	var ce *wstest.CloseFrame
	if !errors.As(err, &ce) || ce.Code != ws.StatusUnsupportedData {
		t.Fatalf("read = %v, want close 1003", err)
	}
}

func TestAPIPublishErrors(t *testing.T) {
	s := startServer(t, Config{})
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"bad json", `{"topic":`, 400, "bad_json"},
		{"bad topic", `{"topic":"a/b","data":1}`, 400, "bad_topic"},
		{"missing data", `{"topic":"a"}`, 400, "bad_request"},
		{"missing topic", `{"data":1}`, 400, "bad_request"},
		{"bad data", `{"topic":"a","data":tru}`, 400, "bad_json"},
		{"ok", `{"topic":"a","data":[1]}`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postPublish(t, s, tc.body)
			if status != tc.status {
				t.Fatalf("status = %d (%s), want %d", status, body, tc.status)
			}
			if tc.code == "" {
				return
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error != tc.code {
				t.Fatalf("body = %s, want error %q", body, tc.code)
			}
		})
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	s := startServer(t, Config{})
	dial(t, s, "/ws?topics=m")
	publish(t, s, "m", `1`)
	for _, tc := range []struct {
		path, want string
	}{
		{"/healthz", "ok"},
		{"/readyz", "ready"},
		{"/metrics", "wspush_connections 1"},
		{"/metrics", `wspush_messages_published_total 1`},
		{"/metrics", `wspush_messages_dropped_total{policy="drop-oldest"} 0`},
		{"/metrics", "go_goroutines"},
		{"/metrics", "wspush_publish_duration_seconds_count 1"},
	} {
		t.Run(tc.path+" "+tc.want, func(t *testing.T) {
			body := get(t, "http://"+s.APIAddr().String()+tc.path, 200)
			if !strings.Contains(body, tc.want) {
				t.Fatalf("%s lacks %q:\n%s", tc.path, tc.want, body)
			}
		})
	}
	get(t, "http://"+s.APIAddr().String()+"/debug/pprof/", 404)
}

func TestPprofFlag(t *testing.T) {
	s := startServer(t, Config{Pprof: true})
	get(t, "http://"+s.APIAddr().String()+"/debug/pprof/", 200)
}

func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, b := httpGet(t, url)
	if resp.StatusCode != status {
		t.Fatalf("GET %s = %d, want %d", url, resp.StatusCode, status)
	}
	return string(b)
}

// httpGet GETs url and returns the response with its whole body read.
func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestUpgradeFailureMetricsByReason(t *testing.T) {
	s := startServer(t, Config{MaxConns: 1, AllowedOrigins: []string{"https://ok.example"}})
	refuse := func(target string) {
		t.Helper()
		if _, err := wstest.Dial(s.WSAddr().String(), target, nil); !errors.Is(err, wstest.ErrStatus) {
			t.Fatalf("%s: err = %v, want refusal", target, err)
		}
	}
	refuse("/nope")
	refuse("/ws?topics=%20")
	dial(t, s, "/ws")
	refuse("/ws") // over MaxConns
	body := get(t, "http://"+s.APIAddr().String()+"/metrics", 200)
	for _, want := range []string{
		`wspush_upgrade_failures_total{reason="not_found"} 1`,
		`wspush_upgrade_failures_total{reason="bad_request"} 1`,
		`wspush_upgrade_failures_total{reason="unavailable"} 1`,
		`wspush_upgrades_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q in:\n%s", want, grepLines(body, "wspush_upgrade"))
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
