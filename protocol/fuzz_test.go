package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/protocol"
)

// commandSeeds are inputs for FuzzParseCommand (also stored under
// testdata/fuzz/FuzzParseCommand).
var commandSeeds = []string{
	`{"op":"subscribe","topics":["a"]}`,
	`{"op":"subscribe","id":0,"topics":["a","b.c","x:y-z_1"]}`,
	`{"op":"unsubscribe","id":-1,"topics":["a"]}`,
	`{"op":"publish","id":42,"topic":"t","data":{"b":1,"a":1.50}}`,
	`{"op":"publish","topic":"t","data":null}`,
	`{"op":"publish","topic":"t","data":"\u00e9\ud83d\ude00"}`,
	`{"op":"publish","topic":"t","data":[1,{"x":[true,false,null]}]}`,
	`{"op":"subscribe","id":"5","topics":["a"]}`,
	`{"op":"subscribe","id":9,"topics":"a"}`,
	`{"op":"shout","id":13}`,
	`{"id":1}`,
	`{"op":"subscribe","topics":[]}`,
	`{"op":"subscribe","topics":["a b","a/b","é",""]}`,
	`{"op":"publish","topic":"t"}`,
	`{"op":"publish","data":1}`,
	`{"op":"subscribe","topics":["a"]`,
	`[1,2]`,
	``,
	" \t\n{\"op\":\"subscribe\",\"topics\":[\"a\"]} ",
	"\u00a0{\"op\":\"subscribe\",\"topics\":[\"a\"]}",
	`{"OP":"Publish","TOPIC":"t","DATA":1}`,
	`{"op":"publish","topic":"t","data":1,"data":2,"topic":"u"}`,
	"{\"op\":\"publish\",\"topic\":\"t\",\"data\":\"\xff\xfe\"}",
	"{\"op\":\"publish\",\"id\":3,\"topic\":\"t\",\"data\":[\"\xc3\",\"\xed\xa0\x80\"]}",
	// protocol v1.1: since
	`{"op":"subscribe","id":1,"topics":["a","b"],"since":{"a":{"epoch":"E","seq":12}}}`,
	`{"op":"subscribe","topics":["a"],"since":{}}`,
	`{"op":"subscribe","topics":["a"],"since":null}`,
	`{"op":"subscribe","topics":["x:y"],"since":{"x:y":{"epoch":"q3F8aZ0-x_c","seq":18446744073709551615}}}`,
	`{"op":"subscribe","id":2,"topics":["a"],"since":{"b":{"epoch":"E","seq":1}}}`,
	`{"op":"subscribe","topics":["a"],"since":{"a":{"epoch":"E.x","seq":-1}}}`,
	`{"op":"subscribe","topics":["a"],"since":{"a":{"epoch":"E","seq":1.0}}}`,
	`{"op":"subscribe","topics":["a"],"since":{"a":{"epoch":"E","seq":"1"}}}`,
	`{"op":"subscribe","topics":["a"],"since":{"a":{"epoch":"E","seq":1},"a":{"epoch":"F","seq":2}}}`,
	`{"op":"subscribe","topics":["a"],"since":[{"a":1}]}`,
	`{"op":"unsubscribe","id":3,"topics":["a"],"since":{}}`,
	`{"op":"publish","topic":"a","data":1,"since":{"a":{"epoch":"E","seq":1}}}`,
}

// publishSeeds are inputs for FuzzParsePublish (also stored under
// testdata/fuzz/FuzzParsePublish).
var publishSeeds = []string{
	`{"topic":"news","data":{"x":1}}`,
	`{"data":[1,2],"topic":"a.b"}`,
	`{"topic":"t","data":{"b":1,"a":1.50}}`,
	`{"topic":"t","data":null}`,
	`{"topic":5,"data":1}`,
	`{"topic":"a/b","data":1}`,
	`{"topic":"t"}`,
	`{"data":1}`,
	`{"topic":"t","data":`,
	`[]`,
	``,
	"\n{\"topic\":\"t\",\"data\":\"\\u0000\"}\n",
	"{\"topic\":\"t\",\"data\":\"\xff\xfe\"}",
	"{\"topic\":\"t\",\"data\":{\"\xed\xa0\x80\":[\"\xf0\x9f\x98\"]}}",
	`{"topics":["a","b"],"data":1}`,
	`{"topics":["a","a"],"data":1}`,
	`{"topics":[],"data":1}`,
	`{"user":"ann@example.com","data":{"x":1}}`,
	`{"user":"a b","data":1}`,
	`{"user":"1","topic":"a","data":1}`,
}

// disconnectSeeds are inputs for FuzzParseDisconnect (also stored under
// testdata/fuzz/FuzzParseDisconnect).
var disconnectSeeds = []string{
	`{"user":"42"}`,
	`{"user":""}`,
	`{"user":"a/b"}`,
	`{"user":null}`,
	`{"user":"42"`,
	`[]`,
}

// sinceSeeds are inputs for FuzzParseSince (also stored under
// testdata/fuzz/FuzzParseSince).
var sinceSeeds = []string{
	"",
	"a:E:12",
	"a:E:12,b:F-_0:0",
	"x:y:z:q3F8aZ0-x_c:18446744073709551615",
	"::E:007",
	"a:E:1,a:E:1",
	"a:E:1,",
	",",
	"a:E",
	"a::1",
	":E:1",
	"a:E:-1",
	"a:E:18446744073709551616",
	"a b:E.x:1e2",
	"a:\xc3\xa9:1",
}

// errorSeed is one input for FuzzAppendError.
type errorSeed struct {
	hasID bool
	id    int64
	code  uint8
	msg   string
}

var errorSeeds = []errorSeed{
	{true, 5, 0, "invalid JSON"},
	{false, 0, 1, ""},
	{true, -1, 2, `quote " backslash \ slash /`},
	{true, 1 << 62, 3, "\x00\x01\x1f\x7f\n\r\t"},
	{false, 7, 4, "bad \xff\xfe utf8 \xed\xa0\x80 surrogate \xf0\x9f\x98 cut"},
	{true, 0, 9, "ok ünïcødé 😀 \u2028\u2029 \uFFFD"},
}

// codes are the error codes AppendError may be given.
var codes = []string{
	protocol.CodeBadJSON, protocol.CodeUnknownOp, protocol.CodeBadTopic, protocol.CodeBadRequest,
	protocol.CodeDisabled, protocol.CodeForbidden, protocol.CodeLimit, protocol.CodeInternal,
	protocol.CodeTooLarge, protocol.CodeUnauthorized,
}

// checkParseError asserts that err is a *CommandError whose code is one a
// parser may return and whose sentinel matches it.
func checkParseError(t *testing.T, err error, allowed ...string) *protocol.CommandError {
	t.Helper()
	var cerr *protocol.CommandError
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v (%T) is not a *protocol.CommandError", err, err)
	}
	known := false
	for _, c := range allowed {
		known = known || cerr.Code == c
	}
	if !known {
		t.Fatalf("unexpected code %q (allowed %q)", cerr.Code, allowed)
	}
	if !errors.Is(err, sentinelFor[cerr.Code]) {
		t.Fatalf("code %q but error wraps %v", cerr.Code, cerr.Err)
	}
	if cerr.Message == "" {
		t.Fatal("empty message")
	}
	return cerr
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		cmd, err := protocol.ParseCommand(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("ParseCommand modified its input")
		}
		if err != nil {
			cerr := checkParseError(t, err, protocol.CodeBadJSON, protocol.CodeUnknownOp, protocol.CodeBadTopic, protocol.CodeBadRequest)
			if cerr.Code == protocol.CodeBadJSON && cerr.HasID {
				t.Fatalf("bad_json error carries an id: %+v", cerr)
			}
			if !cerr.HasID && cerr.ID != 0 {
				t.Fatalf("id %d without HasID", cerr.ID)
			}
			return
		}
		if !cmd.HasID && cmd.ID != 0 {
			t.Fatalf("id %d without HasID", cmd.ID)
		}
		switch cmd.Op {
		case protocol.OpSubscribe, protocol.OpUnsubscribe:
			if len(cmd.Topics) == 0 {
				t.Fatalf("%v with no topics", cmd.Op)
			}
			for _, tp := range cmd.Topics {
				if !protocol.ValidTopic(tp) {
					t.Fatalf("invalid topic %q accepted", tp)
				}
			}
			if cmd.Topic != "" || cmd.Data != nil {
				t.Fatalf("%v carries publish fields: %+v", cmd.Op, cmd)
			}
			checkSince(t, cmd)
		case protocol.OpPublish:
			if !protocol.ValidTopic(cmd.Topic) {
				t.Fatalf("invalid topic %q accepted", cmd.Topic)
			}
			if !json.Valid(cmd.Data) {
				t.Fatalf("data %q is not valid JSON", cmd.Data)
			}
			if !utf8.Valid(cmd.Data) {
				t.Fatalf("data %q is not valid UTF-8: a browser would close with 1007", cmd.Data)
			}
			if !bytes.Contains(in, cmd.Data) {
				t.Fatalf("data %q is not a verbatim part of the input %q", cmd.Data, in)
			}
			if cmd.Topics != nil {
				t.Fatalf("publish carries topics %q", cmd.Topics)
			}
			if cmd.Since != nil {
				t.Fatalf("publish carries since %v", cmd.Since)
			}
		default:
			t.Fatalf("success with op %v", cmd.Op)
		}
	})
}

// checkSince asserts the rules of a parsed subscribe's since: only on
// subscribe, every topic one of the command's, every epoch valid.
func checkSince(t *testing.T, cmd protocol.Command) {
	t.Helper()
	if cmd.Since != nil && cmd.Op != protocol.OpSubscribe {
		t.Fatalf("%v carries since %v", cmd.Op, cmd.Since)
	}
	for topic, p := range cmd.Since {
		if !slices.Contains(cmd.Topics, topic) {
			t.Fatalf("since topic %q is not in topics %q", topic, cmd.Topics)
		}
		if !engine.ValidEpoch(p.Epoch) {
			t.Fatalf("since %q: invalid epoch %q accepted", topic, p.Epoch)
		}
	}
}

func FuzzParsePublish(f *testing.F) {
	for _, s := range publishSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		req, err := protocol.ParsePublish(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("ParsePublish modified its input")
		}
		if err != nil {
			cerr := checkParseError(t, err, protocol.CodeBadJSON, protocol.CodeBadTopic, protocol.CodeBadRequest)
			if cerr.HasID {
				t.Fatalf("ParsePublish error carries an id: %+v", cerr)
			}
			return
		}
		streams := req.Streams()
		if len(streams) == 0 || len(streams) > protocol.MaxPublishTopics {
			t.Fatalf("%d streams accepted", len(streams))
		}
		for _, name := range streams {
			if id, ok := protocol.UserOf(name); ok && (req.User != id || !protocol.ValidUser(id)) {
				t.Fatalf("user stream %q accepted for user %q", name, req.User)
			} else if !ok && !protocol.ValidTopic(name) {
				t.Fatalf("invalid topic %q accepted", name)
			}
		}
		if !json.Valid(req.Data) {
			t.Fatalf("data %q is not valid JSON", req.Data)
		}
		if !utf8.Valid(req.Data) {
			t.Fatalf("data %q is not valid UTF-8: a browser would close with 1007", req.Data)
		}
		if !bytes.Contains(in, req.Data) {
			t.Fatalf("data %q is not a verbatim part of the input %q", req.Data, in)
		}
	})
}

func FuzzParseDisconnect(f *testing.F) {
	for _, s := range disconnectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		user, err := protocol.ParseDisconnect(in)
		if err != nil {
			cerr := checkParseError(t, err, protocol.CodeBadJSON, protocol.CodeBadRequest)
			if cerr.HasID || user != "" {
				t.Fatalf("ParseDisconnect error %+v with user %q", cerr, user)
			}
			return
		}
		if !protocol.ValidUser(user) {
			t.Fatalf("invalid user %q accepted", user)
		}
	})
}

func FuzzParseSince(f *testing.F) {
	for _, s := range sinceSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		since, err := protocol.ParseSince(s)
		if err != nil {
			if cerr := checkParseError(t, err, protocol.CodeBadRequest); cerr.HasID {
				t.Fatalf("ParseSince error carries an id: %+v", cerr)
			}
			if since != nil {
				t.Fatalf("error %v with a map %v", err, since)
			}
			return
		}
		if (since == nil) != (s == "") {
			t.Fatalf("ParseSince(%q) = %v: want nil exactly for the empty string", s, since)
		}
		if want := strings.Count(s, ",") + 1; s != "" && len(since) != want {
			t.Fatalf("%d entries from %d items of %q", len(since), want, s)
		}
		items := make([]string, 0, len(since))
		for topic, p := range since {
			user, isUser := protocol.UserOf(topic)
			if !(protocol.ValidTopic(topic) || isUser && protocol.ValidUser(user)) || !engine.ValidEpoch(p.Epoch) {
				t.Fatalf("accepted topic %q epoch %q", topic, p.Epoch)
			}
			items = append(items, topic+":"+p.Epoch+":"+strconv.FormatUint(p.Seq, 10))
		}
		again, err := protocol.ParseSince(strings.Join(items, ","))
		if err != nil || !maps.Equal(again, since) {
			t.Fatalf("re-encoded %q parses to %v, %v; want %v", items, again, err, since)
		}
	})
}

func FuzzAppendError(f *testing.F) {
	for _, s := range errorSeeds {
		f.Add(s.hasID, s.id, s.code, s.msg)
	}
	f.Fuzz(func(t *testing.T, hasID bool, id int64, codeIdx uint8, msg string) {
		code := codes[int(codeIdx)%len(codes)]
		out := protocol.AppendError(nil, hasID, id, code, msg)
		checkErrorReply(t, out, hasID, id, code, msg)
		// Appending to a non-empty buffer writes the same bytes after it.
		pre := []byte(`[`)
		if got := protocol.AppendError(pre, hasID, id, code, msg); !bytes.Equal(got[1:], out) || got[0] != '[' {
			t.Fatalf("append to a prefix wrote %q, want %q", got[1:], out)
		}
	})
}
