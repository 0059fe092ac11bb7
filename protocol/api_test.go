package protocol_test

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/protocol"
)

func TestParsePublishTargets(t *testing.T) {
	long := strings.Repeat("u", protocol.MaxUserLen)
	many := make([]string, protocol.MaxPublishTopics+1)
	for i := range many {
		many[i] = `"t` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `.` + strings.Repeat("y", i/26) + `"`
	}
	tests := []struct {
		name    string
		in      string
		streams []string // want; nil means an error
		code    string
	}{
		{name: "topic", in: `{"topic":"a","data":1}`, streams: []string{"a"}},
		{name: "topics", in: `{"topics":["a","b.c"],"data":1}`, streams: []string{"a", "b.c"}},
		{name: "topics_one", in: `{"topics":["a"],"data":1}`, streams: []string{"a"}},
		{name: "topics_1000", in: `{"topics":[` + strings.Join(many[:protocol.MaxPublishTopics], ",") + `],"data":1}`},
		{name: "user", in: `{"user":"42","data":{"x":1}}`, streams: []string{"@42"}},
		{name: "user_email", in: `{"user":"ann@example.com","data":1}`, streams: []string{"@ann@example.com"}},
		{name: "user_127", in: `{"user":"` + long + `","data":1}`, streams: []string{"@" + long}},
		{name: "topics_null_is_absent", in: `{"topic":"a","topics":null,"data":1}`, streams: []string{"a"}},

		{name: "topic_and_user", in: `{"topic":"a","user":"1","data":1}`, code: protocol.CodeBadRequest},
		{name: "topic_and_topics", in: `{"topic":"a","topics":["b"],"data":1}`, code: protocol.CodeBadRequest},
		{name: "none", in: `{"data":1}`, code: protocol.CodeBadRequest},
		{name: "topics_empty", in: `{"topics":[],"data":1}`, code: protocol.CodeBadRequest},
		{name: "topics_1001", in: `{"topics":[` + strings.Join(many, ",") + `],"data":1}`, code: protocol.CodeBadRequest},
		{name: "topics_duplicate", in: `{"topics":["a","b","a"],"data":1}`, code: protocol.CodeBadRequest},
		{name: "topics_bad_name", in: `{"topics":["a","@1"],"data":1}`, code: protocol.CodeBadTopic},
		{name: "topics_not_strings", in: `{"topics":[1],"data":1}`, code: protocol.CodeBadRequest},
		{name: "topics_no_data", in: `{"topics":["a"]}`, code: protocol.CodeBadRequest},
		{name: "user_empty", in: `{"user":"","data":1}`, code: protocol.CodeBadRequest},
		{name: "user_128", in: `{"user":"` + long + `x","data":1}`, code: protocol.CodeBadRequest},
		{name: "user_space", in: `{"user":"a b","data":1}`, code: protocol.CodeBadRequest},
		{name: "user_plus", in: `{"user":"a+b@x","data":1}`, code: protocol.CodeBadRequest},
		{name: "user_number", in: `{"user":42,"data":1}`, code: protocol.CodeBadRequest},
		{name: "user_bad_data", in: "{\"user\":\"1\",\"data\":\"\xff\"}", code: protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := protocol.ParsePublish([]byte(tt.in))
			if tt.code != "" {
				checkCommandError(t, err, wantErr{code: tt.code})
				return
			}
			if err != nil {
				t.Fatalf("ParsePublish: %v", err)
			}
			got := req.Streams()
			if tt.streams == nil {
				if len(got) != protocol.MaxPublishTopics {
					t.Fatalf("%d streams, want %d", len(got), protocol.MaxPublishTopics)
				}
				return
			}
			if !slices.Equal(got, tt.streams) {
				t.Fatalf("Streams() = %q, want %q", got, tt.streams)
			}
		})
	}
}

func TestParseDisconnect(t *testing.T) {
	tests := []struct {
		in   string
		user string
		code string
	}{
		{in: `{"user":"42"}`, user: "42"},
		{in: " {\"user\":\"a@b.c\",\"x\":1}\n", user: "a@b.c"},
		{in: `{"user":""}`, code: protocol.CodeBadRequest},
		{in: `{"user":"a/b"}`, code: protocol.CodeBadRequest},
		{in: `{}`, code: protocol.CodeBadRequest},
		{in: `{"user":null}`, code: protocol.CodeBadRequest},
		{in: `{"user":1}`, code: protocol.CodeBadRequest},
		{in: `["42"]`, code: protocol.CodeBadJSON},
		{in: `{"user":"42"`, code: protocol.CodeBadJSON},
		{in: ``, code: protocol.CodeBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			user, err := protocol.ParseDisconnect([]byte(tt.in))
			if tt.code != "" {
				checkCommandError(t, err, wantErr{code: tt.code})
				return
			}
			if err != nil || user != tt.user {
				t.Fatalf("ParseDisconnect = %q, %v; want %q", user, err, tt.user)
			}
		})
	}
}

func TestValidUser(t *testing.T) {
	for _, s := range []string{"1", "42", "ann@example.com", "a:b.c-d_e", strings.Repeat("z", 127)} {
		if !protocol.ValidUser(s) {
			t.Errorf("ValidUser(%q) = false", s)
		}
		if id, ok := protocol.UserOf(protocol.UserStream(s)); !ok || id != s {
			t.Errorf("UserOf(UserStream(%q)) = %q, %v", s, id, ok)
		}
	}
	for _, s := range []string{"", "a b", "a+b", "a/b", "é", `a"b`, strings.Repeat("z", 128)} {
		if protocol.ValidUser(s) {
			t.Errorf("ValidUser(%q) = true", s)
		}
	}
	for _, s := range []string{"a", "@", ""} {
		if _, ok := protocol.UserOf(s); ok {
			t.Errorf("UserOf(%q) reports a user's stream", s)
		}
		if s != "" && protocol.ValidTopic(protocol.UserStream(s)) {
			t.Errorf("the stream of %q is a valid topic name", s)
		}
	}
}

func TestUserStreamEncoding(t *testing.T) {
	for _, seq := range []uint64{0, 9, 10, math.MaxUint64} {
		got := protocol.AppendDelivery(nil, "@ann@x.org", seq, []byte(`{"a":1}`))
		if len(got) != protocol.DeliveryLen("@ann@x.org", seq, []byte(`{"a":1}`)) {
			t.Fatalf("DeliveryLen = %d, AppendDelivery wrote %d: %s", protocol.DeliveryLen("@ann@x.org", seq, []byte(`{"a":1}`)), len(got), got)
		}
		var d struct {
			User string          `json:"user"`
			Seq  uint64          `json:"seq"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(got, &d); err != nil || d.User != "ann@x.org" || d.Seq != seq || string(d.Data) != `{"a":1}` {
			t.Fatalf("%s decodes to %+v, %v", got, d, err)
		}
		if !strings.HasPrefix(string(got), `{"user":"ann@x.org","seq":`) {
			t.Fatalf("delivery %s", got)
		}
	}
	got := protocol.AppendReset(nil, "@42", engine.Position{Epoch: "E", Seq: 40})
	if want := `{"op":"reset","user":"42","positions":{"@42":{"epoch":"E","seq":40}}}`; string(got) != want {
		t.Fatalf("AppendReset = %s, want %s", got, want)
	}
	since, err := protocol.ParseSince("a:E:1,@ann@x.org:F:2")
	if err != nil || since["@ann@x.org"] != (engine.Position{Epoch: "F", Seq: 2}) || since["a"].Seq != 1 {
		t.Fatalf("ParseSince = %v, %v", since, err)
	}
	for _, bad := range []string{"@:E:1", "@a b:E:1", "@@:E:1x"} {
		if _, err := protocol.ParseSince(bad); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}

func TestAppendPublishResults(t *testing.T) {
	rs := []protocol.PublishResult{
		{Topic: "a", Seq: 17, Epoch: "E", Recipients: 3},
		{Topic: "b", Code: protocol.CodeLimit, Message: `too "many" topics`},
		{Topic: "c", Seq: math.MaxUint64, Epoch: "q3F8aZ0-x_c"},
	}
	got := protocol.AppendPublishResults([]byte("x"), rs)
	want := `x{"results":[{"topic":"a","seq":17,"epoch":"E","recipients":3},` +
		`{"topic":"b","error":"limit","message":"too \"many\" topics"},` +
		`{"topic":"c","seq":18446744073709551615,"epoch":"q3F8aZ0-x_c","recipients":0}]}`
	if string(got) != want {
		t.Fatalf("AppendPublishResults =\n  %s\nwant\n  %s", got, want)
	}
	var r struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(got[1:], &r); err != nil || len(r.Results) != 3 || r.Results[1]["message"] != `too "many" topics` {
		t.Fatalf("decodes to %+v, %v", r, err)
	}
	if got := protocol.AppendDisconnectAnswer(nil, 7); string(got) != `{"closed":7}` {
		t.Fatalf("AppendDisconnectAnswer = %s", got)
	}
}
