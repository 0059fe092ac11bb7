package server

import (
	"encoding/json"
	"net/http"
	"testing"

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

// TestInvalidUTF8ClientPublishRefused: a binary frame is a command too and
// is never checked as text, so a client publish could carry the same bytes.
func TestInvalidUTF8ClientPublishRefused(t *testing.T) {
	s := startServer(t, Config{ClientPublish: true})
	sub := dial(t, s, "/ws?topics=t")
	pub := dial(t, s, "/ws")
	bad := []byte("{\"op\":\"publish\",\"topic\":\"t\",\"data\":\"\xff\xfe\",\"id\":1}")
	if err := pub.Write(wstest.Frame{Op: ws.OpBinary, Payload: bad}); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, pub); r.Op != "error" || r.Code != "bad_request" || r.ID == nil || *r.ID != 1 {
		t.Fatalf("reply = %+v, want error bad_request for id 1", r)
	}
	if err := pub.WriteText(`{"op":"publish","topic":"t","data":"ok","id":2}`); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, pub); r.Op != "ack" || r.ID == nil || *r.ID != 2 {
		t.Fatalf("reply = %+v, want ack 2", r)
	}
	if got, err := sub.ReadText(readWait); err != nil || got != `{"topic":"t","seq":1,"data":"ok"}` {
		t.Fatalf("subscriber read %q, %v; want the valid delivery", got, err)
	}
}
