package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/internal/wstest"
)

// POST /api/publish bodies the API refuses, and what subscribers see then.

// TestInvalidUTF8PublishRefused: raw bytes that are not UTF-8 inside a JSON
// string pass encoding/json; delivered, they made every subscribed browser
// close with 1007. The API refuses them and the subscriber stays connected.
func TestInvalidUTF8PublishRefused(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "string", body: "{\"topic\":\"t\",\"data\":\"\xff\xfe\"}"},
		{name: "object_key", body: "{\"topic\":\"t\",\"data\":{\"\xc3\":1}}"},
		{name: "surrogate_bytes", body: "{\"topic\":\"t\",\"data\":[\"\xed\xa0\x80\"]}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{})
			c := dial(t, s, "/ws?topics=t")
			status, body := postPublish(t, s, tt.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d (%s), want 400", status, body)
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error != "bad_request" {
				t.Fatalf("body = %s, want error bad_request", body)
			}
			// The next valid publish is the first thing the client reads:
			// no close frame, no delivery of the refused one.
			r := publish(t, s, "t", `"ok"`)
			if r.Seq != 1 || r.Recipients != 1 {
				t.Fatalf("next publish = %+v, want seq 1 to the 1 subscriber", r)
			}
			if got, err := c.ReadText(readWait); err != nil || got != `{"topic":"t","seq":1,"data":"ok"}` {
				t.Fatalf("client read %q, %v; want the valid delivery", got, err)
			}
		})
	}
}

// TestInvalidUTF8ClientPublishRefused: a client publish cannot carry
// invalid UTF-8 either: in a text frame wsconn fails it with 1007, and a
// binary frame is not a command (1003); neither reaches a subscriber.
func TestInvalidUTF8ClientPublishRefused(t *testing.T) {
	s := startServer(t, Config{ClientPublish: true})
	sub := dial(t, s, "/ws?topics=t")
	bad := []byte("{\"op\":\"publish\",\"topic\":\"t\",\"data\":\"\xff\xfe\",\"id\":1}")
	for _, tc := range []struct {
		op   ws.OpCode
		code ws.StatusCode
	}{{ws.OpText, ws.StatusInvalidFramePayloadData}, {ws.OpBinary, ws.StatusUnsupportedData}} {
		pub := dial(t, s, "/ws")
		if err := pub.Write(wstest.Frame{Op: tc.op, Payload: bad}); err != nil {
			t.Fatal(err)
		}
		_, err := pub.ReadText(readWait)
		var cf *wstest.CloseFrame
		if !errors.As(err, &cf) || cf.Code != tc.code {
			t.Fatalf("opcode %v: read %v, want close %d", tc.op, err, tc.code)
		}
	}
	pub := dial(t, s, "/ws")
	if err := pub.WriteText(`{"op":"publish","topic":"t","data":"ok","id":2}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, pub); r.Op != "ack" || r.ID == nil || *r.ID != 2 {
		t.Fatalf("reply = %+v, want ack 2", r)
	}
	if got, err := sub.ReadText(readWait); err != nil || got != `{"topic":"t","seq":1,"data":"ok"}` {
		t.Fatalf("subscriber read %q, %v; want the valid delivery first", got, err)
	}
}

// TestAPIBodyLimitIsMaxMessage: the API body limit is exactly
// Conn.MaxMessage, as documented (it was MaxMessage+1024).
func TestAPIBodyLimitIsMaxMessage(t *testing.T) {
	const maxMessage = 512
	s := startServer(t, Config{Conn: connCfg(maxMessage)})
	tests := []struct {
		name   string
		size   int
		status int
		code   string
	}{
		{name: "one_under", size: maxMessage - 1, status: http.StatusOK},
		{name: "exactly_max", size: maxMessage, status: http.StatusOK},
		{name: "one_over", size: maxMessage + 1, status: http.StatusRequestEntityTooLarge, code: "too_large"},
		{name: "limit_plus_1024", size: maxMessage + 1024, status: http.StatusRequestEntityTooLarge, code: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := publishBodyOfSize(t, tt.size)
			status, reply := postPublish(t, s, body)
			if status != tt.status {
				t.Fatalf("%d-byte body: status %d (%s), want %d", len(body), status, reply, tt.status)
			}
			if tt.code == "" {
				return
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal(reply, &e); err != nil || e.Error != tt.code {
				t.Fatalf("body = %s, want error %q", reply, tt.code)
			}
		})
	}
}

// publishBodyOfSize returns a valid publish body of exactly n bytes.
func publishBodyOfSize(t *testing.T, n int) string {
	t.Helper()
	const frame = `{"topic":"t","data":""}`
	if n < len(frame) {
		t.Fatalf("size %d is below the smallest body", n)
	}
	return `{"topic":"t","data":"` + strings.Repeat("x", n-len(frame)) + `"}`
}

// TestAPIServerTimeouts: a client that trickles a request body or holds an
// idle keep-alive connection must not hold it forever.
func TestAPIServerTimeouts(t *testing.T) {
	s := startServer(t, Config{})
	s.mu.Lock()
	api := s.api
	s.mu.Unlock()
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{name: "ReadHeaderTimeout", got: api.ReadHeaderTimeout, want: DefaultAPIReadHeaderTimeout},
		{name: "ReadTimeout", got: api.ReadTimeout, want: DefaultAPIReadTimeout},
		{name: "IdleTimeout", got: api.IdleTimeout, want: DefaultAPIIdleTimeout},
	}
	for _, tt := range tests {
		if tt.want <= 0 || tt.got != tt.want {
			t.Errorf("%s = %v, want %v (positive)", tt.name, tt.got, tt.want)
		}
	}
}
