package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// sentinelFor maps each parser error code to the sentinel it must wrap.
var sentinelFor = map[string]error{
	protocol.CodeBadJSON:    protocol.ErrBadJSON,
	protocol.CodeUnknownOp:  protocol.ErrUnknownOp,
	protocol.CodeBadTopic:   protocol.ErrBadTopic,
	protocol.CodeBadRequest: protocol.ErrBadRequest,
}

// wantErr describes an expected *CommandError.
type wantErr struct {
	code  string
	hasID bool
	id    int64
}

// checkCommandError asserts err is a *CommandError with the given code, id
// and matching sentinel.
func checkCommandError(t *testing.T, err error, want wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %q", want.code)
	}
	var cerr *protocol.CommandError
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v (%T) is not a *protocol.CommandError", err, err)
	}
	if cerr.Code != want.code {
		t.Errorf("code = %q, want %q (message %q)", cerr.Code, want.code, cerr.Message)
	}
	if cerr.HasID != want.hasID || cerr.ID != want.id {
		t.Errorf("id = (%v, %d), want (%v, %d)", cerr.HasID, cerr.ID, want.hasID, want.id)
	}
	if s := sentinelFor[want.code]; !errors.Is(err, s) {
		t.Errorf("errors.Is(err, %v) = false; err wraps %v", s, cerr.Err)
	}
	if cerr.Message == "" {
		t.Error("empty Message")
	}
	if !strings.Contains(err.Error(), want.code) {
		t.Errorf("Error() = %q, does not name code %q", err.Error(), want.code)
	}
}

func TestParseCommand(t *testing.T) {
	topic128 := strings.Repeat("a", 128)
	topic129 := strings.Repeat("a", 129)
	tests := []struct {
		name string
		in   string
		want protocol.Command // checked when err is zero
		err  wantErr          // code "" means success
	}{
		// subscribe / unsubscribe
		{name: "subscribe", in: `{"op":"subscribe","topics":["news"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, Topics: []string{"news"}}},
		{name: "subscribe_with_id", in: `{"op":"subscribe","id":7,"topics":["a","b.c","x:y-z_1"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, HasID: true, ID: 7, Topics: []string{"a", "b.c", "x:y-z_1"}}},
		{name: "subscribe_id_zero_is_valid", in: `{"op":"subscribe","id":0,"topics":["a"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, HasID: true, ID: 0, Topics: []string{"a"}}},
		{name: "subscribe_negative_id", in: `{"op":"subscribe","id":-12,"topics":["a"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, HasID: true, ID: -12, Topics: []string{"a"}}},
		{name: "subscribe_max_int64_id", in: `{"op":"subscribe","id":9223372036854775807,"topics":["a"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, HasID: true, ID: 9223372036854775807, Topics: []string{"a"}}},
		{name: "subscribe_null_id_is_no_id", in: `{"op":"subscribe","id":null,"topics":["a"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, Topics: []string{"a"}}},
		{name: "subscribe_128_byte_topic", in: `{"op":"subscribe","topics":["` + topic128 + `"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, Topics: []string{topic128}}},
		{name: "subscribe_surrounding_whitespace", in: " \t\r\n{\"op\":\"subscribe\",\"topics\":[\"a\"]}\n ",
			want: protocol.Command{Op: protocol.OpSubscribe, Topics: []string{"a"}}},
		{name: "subscribe_escaped_topic", in: `{"op":"subscribe","topics":["\u0061b"]}`,
			want: protocol.Command{Op: protocol.OpSubscribe, Topics: []string{"ab"}}},
		{name: "unsubscribe", in: `{"op":"unsubscribe","topics":["a","b"]}`,
			want: protocol.Command{Op: protocol.OpUnsubscribe, Topics: []string{"a", "b"}}},
		{name: "unsubscribe_with_id", in: `{"id":3,"op":"unsubscribe","topics":["a"]}`,
			want: protocol.Command{Op: protocol.OpUnsubscribe, HasID: true, ID: 3, Topics: []string{"a"}}},

		// publish
		{name: "publish", in: `{"op":"publish","topic":"t","data":{"x":1}}`,
			want: protocol.Command{Op: protocol.OpPublish, Topic: "t", Data: []byte(`{"x":1}`)}},
		{name: "publish_with_id", in: `{"op":"publish","id":42,"topic":"t","data":"s"}`,
			want: protocol.Command{Op: protocol.OpPublish, HasID: true, ID: 42, Topic: "t", Data: []byte(`"s"`)}},
		{name: "publish_id_zero", in: `{"op":"publish","id":0,"topic":"t","data":1}`,
			want: protocol.Command{Op: protocol.OpPublish, HasID: true, ID: 0, Topic: "t", Data: []byte(`1`)}},
		{name: "publish_data_verbatim_key_order_and_number", in: `{"op":"publish","topic":"t","data":{"b":1,"a":1.50}}`,
			want: protocol.Command{Op: protocol.OpPublish, Topic: "t", Data: []byte(`{"b":1,"a":1.50}`)}},
		{name: "publish_data_verbatim_inner_whitespace_and_escapes", in: `{"op":"publish","topic":"t","data": [ 1e3 , "\u00e9\n" , {} ] }`,
			want: protocol.Command{Op: protocol.OpPublish, Topic: "t", Data: []byte(`[ 1e3 , "\u00e9\n" , {} ]`)}},
		{name: "publish_data_null_counts_as_data", in: `{"op":"publish","topic":"t","data":null}`,
			want: protocol.Command{Op: protocol.OpPublish, Topic: "t", Data: []byte(`null`)}},
		{name: "publish_data_false", in: `{"op":"publish","topic":"t","data":false}`,
			want: protocol.Command{Op: protocol.OpPublish, Topic: "t", Data: []byte(`false`)}},

		// bad JSON: never an id
		{name: "empty", in: ``, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "whitespace_only", in: " \n\t", err: wantErr{code: protocol.CodeBadJSON}},
		{name: "not_an_object_array", in: `[{"op":"subscribe","topics":["a"]}]`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "not_an_object_string", in: `"subscribe"`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "not_an_object_null", in: `null`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "truncated", in: `{"op":"subscribe","id":5,"topics":["a"]`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "trailing_garbage", in: `{"op":"subscribe","id":5,"topics":["a"]}x`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "two_objects", in: `{"op":"subscribe","id":5,"topics":["a"]}{}`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "single_quotes", in: `{'op':'subscribe','id':5}`, err: wantErr{code: protocol.CodeBadJSON}},
		{name: "leading_zero_id", in: `{"op":"subscribe","id":05,"topics":["a"]}`, err: wantErr{code: protocol.CodeBadJSON}},

		// ids that are not integers
		{name: "id_string", in: `{"op":"subscribe","id":"5","topics":["a"]}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "id_float", in: `{"op":"subscribe","id":1.5,"topics":["a"]}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "id_exponent", in: `{"op":"subscribe","id":1e2,"topics":["a"]}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "id_overflow", in: `{"op":"subscribe","id":9223372036854775808,"topics":["a"]}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "id_object", in: `{"op":"subscribe","id":{},"topics":["a"]}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "id_bool", in: `{"op":"subscribe","id":true,"topics":["a"]}`, err: wantErr{code: protocol.CodeBadRequest}},

		// valid JSON, wrong field types: bad_request, with the id when readable
		{name: "topics_not_array_with_id", in: `{"op":"subscribe","id":9,"topics":"a"}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 9}},
		{name: "topics_numbers_with_id", in: `{"op":"subscribe","id":10,"topics":[1,2]}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 10}},
		{name: "op_number_with_id", in: `{"op":5,"id":11}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 11}},
		{name: "topic_number_with_id", in: `{"op":"publish","id":12,"topic":1,"data":1}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 12}},
		{name: "wrong_type_id_zero", in: `{"op":"subscribe","id":0,"topics":{}}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 0}},
		{name: "wrong_type_without_id", in: `{"op":"subscribe","topics":"a"}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "wrong_type_and_unreadable_id", in: `{"op":"subscribe","id":"x","topics":"a"}`, err: wantErr{code: protocol.CodeBadRequest}},

		// op
		{name: "unknown_op_with_id", in: `{"op":"shout","id":13}`, err: wantErr{code: protocol.CodeUnknownOp, hasID: true, id: 13}},
		{name: "unknown_op_without_id", in: `{"op":"shout","topics":["a"]}`, err: wantErr{code: protocol.CodeUnknownOp}},
		{name: "op_case_matters", in: `{"op":"Subscribe","id":14,"topics":["a"]}`, err: wantErr{code: protocol.CodeUnknownOp, hasID: true, id: 14}},
		{name: "op_empty", in: `{"op":"","id":15}`, err: wantErr{code: protocol.CodeUnknownOp, hasID: true, id: 15}},
		{name: "missing_op", in: `{"id":16,"topics":["a"]}`, err: wantErr{code: protocol.CodeUnknownOp, hasID: true, id: 16}},
		{name: "missing_op_empty_object", in: `{}`, err: wantErr{code: protocol.CodeUnknownOp}},
		{name: "null_op", in: `{"op":null,"id":17}`, err: wantErr{code: protocol.CodeUnknownOp, hasID: true, id: 17}},

		// topics
		{name: "empty_topics", in: `{"op":"subscribe","id":18,"topics":[]}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 18}},
		{name: "missing_topics", in: `{"op":"unsubscribe","id":19}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 19}},
		{name: "null_topics", in: `{"op":"subscribe","topics":null}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "topic_empty_name", in: `{"op":"subscribe","id":20,"topics":[""]}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 20}},
		{name: "topic_129_bytes", in: `{"op":"subscribe","id":21,"topics":["` + topic129 + `"]}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 21}},
		{name: "topic_space", in: `{"op":"subscribe","id":22,"topics":["a b"]}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 22}},
		{name: "topic_unicode", in: `{"op":"subscribe","id":23,"topics":["caf\u00e9"]}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 23}},
		{name: "topic_slash", in: `{"op":"unsubscribe","id":24,"topics":["a/b"]}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 24}},
		{name: "topic_null_element", in: `{"op":"subscribe","topics":[null]}`, err: wantErr{code: protocol.CodeBadTopic}},
		{name: "one_bad_topic_among_good", in: `{"op":"subscribe","id":25,"topics":["a","b","c*"]}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 25}},

		// publish fields
		{name: "publish_without_topic", in: `{"op":"publish","id":26,"data":1}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 26}},
		{name: "publish_null_topic", in: `{"op":"publish","topic":null,"data":1}`, err: wantErr{code: protocol.CodeBadRequest}},
		{name: "publish_without_data", in: `{"op":"publish","id":27,"topic":"t"}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 27}},
		{name: "publish_bad_topic", in: `{"op":"publish","id":28,"topic":"a/b","data":1}`, err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 28}},
		{name: "publish_empty_topic", in: `{"op":"publish","topic":"","data":1}`, err: wantErr{code: protocol.CodeBadTopic}},
		{name: "publish_topics_is_not_topic", in: `{"op":"publish","id":29,"topics":["a"],"data":1}`, err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 29}},

		// data must be valid UTF-8: encoding/json keeps a RawMessage's bytes
		// as sent, and a browser closes with 1007 on invalid text.
		{name: "publish_data_invalid_utf8", in: "{\"op\":\"publish\",\"id\":30,\"topic\":\"t\",\"data\":\"\xff\xfe\"}", err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 30}},
		{name: "publish_data_invalid_utf8_nested", in: "{\"op\":\"publish\",\"topic\":\"t\",\"data\":{\"k\":[\"ok\",\"\xc3\"]}}", err: wantErr{code: protocol.CodeBadRequest}},
		{name: "publish_data_surrogate_bytes", in: "{\"op\":\"publish\",\"id\":31,\"topic\":\"t\",\"data\":\"\xed\xa0\x80\"}", err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 31}},
		{name: "publish_data_valid_utf8", in: `{"op":"publish","id":32,"topic":"t","data":"é😀"}`, want: protocol.Command{Op: protocol.OpPublish, HasID: true, ID: 32, Topic: "t", Data: []byte(`"é😀"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			orig := bytes.Clone(in)
			got, err := protocol.ParseCommand(in)
			if !bytes.Equal(in, orig) {
				t.Errorf("ParseCommand modified its input: %q", in)
			}
			if tt.err.code != "" {
				checkCommandError(t, err, tt.err)
				if got.Op != 0 || got.Topics != nil || got.Data != nil {
					t.Errorf("failed parse returned a non-zero command %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.in, err)
			}
			if got.Op != tt.want.Op || got.HasID != tt.want.HasID || got.ID != tt.want.ID || got.Topic != tt.want.Topic {
				t.Errorf("got op=%v hasID=%v id=%d topic=%q, want op=%v hasID=%v id=%d topic=%q",
					got.Op, got.HasID, got.ID, got.Topic, tt.want.Op, tt.want.HasID, tt.want.ID, tt.want.Topic)
			}
			if !slices.Equal(got.Topics, tt.want.Topics) {
				t.Errorf("topics = %q, want %q", got.Topics, tt.want.Topics)
			}
			if !bytes.Equal(got.Data, tt.want.Data) {
				t.Errorf("data = %q, want %q (byte-identical)", got.Data, tt.want.Data)
			}
			if got.Since != nil {
				t.Errorf("since = %v for a command without since (v1 clients see no change)", got.Since)
			}
		})
	}
}

// TestParseCommandNonJSONWhitespace documents a leniency of ParseCommand:
// bytes.TrimSpace strips Unicode spaces (U+00A0, U+0085, U+2000...) that
// JSON does not allow around a value, so a frame that is not valid JSON is
// accepted as a command.
func TestParseCommandNonJSONWhitespace(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "nbsp_prefix", in: "\u00a0{\"op\":\"subscribe\",\"topics\":[\"a\"]}"},
		{name: "nel_suffix", in: "{\"op\":\"subscribe\",\"topics\":[\"a\"]}\u0085"},
		{name: "em_space_both", in: "\u2003{\"op\":\"subscribe\",\"topics\":[\"a\"]}\u2003"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if json.Valid([]byte(tt.in)) {
				t.Fatal("test input is valid JSON")
			}
			_, err := protocol.ParseCommand([]byte(tt.in))
			checkCommandError(t, err, wantErr{code: protocol.CodeBadJSON})
			_, err = protocol.ParsePublish([]byte(strings.Replace(tt.in, `"op":"subscribe","topics":["a"]`, `"topic":"a","data":1`, 1)))
			checkCommandError(t, err, wantErr{code: protocol.CodeBadJSON})
		})
	}
}

// TestParseCommandDataIsVerbatim checks that Data is byte-identical to the
// publisher's value for a spread of JSON spellings.
func TestParseCommandDataIsVerbatim(t *testing.T) {
	values := []string{
		`0`, `-0`, `1.50`, `1E+10`, `-2.5e-3`, `true`, `null`,
		`"plain"`, `"esc \" \\ \/ \b\f\n\r\t \u0000 \ud83d\ude00"`, `"raw ünïcødé 😀"`,
		`[]`, `{}`, `[1,[2,[3]]]`, `{"z":1,"a":{"y":[true,false,null]},"z":2}`,
		"{ \"spaced\" :\t[ 1 ,\n2 ] }",
	}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			in := []byte(`{"op":"publish","topic":"t","data":` + v + `}`)
			cmd, err := protocol.ParseCommand(in)
			if err != nil {
				t.Fatal(err)
			}
			if string(cmd.Data) != v {
				t.Fatalf("Data = %q, want %q", cmd.Data, v)
			}
			req, err := protocol.ParsePublish([]byte(`{"data":` + v + `,"topic":"t"}`))
			if err != nil {
				t.Fatal(err)
			}
			if string(req.Data) != v {
				t.Fatalf("ParsePublish Data = %q, want %q", req.Data, v)
			}
		})
	}
}

func TestParsePublish(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantTopic string
		wantData  string
		err       string // code; "" means success
	}{
		{name: "basic", in: `{"topic":"news","data":{"x":1}}`, wantTopic: "news", wantData: `{"x":1}`},
		{name: "data_first", in: `{"data":[1,2],"topic":"a.b"}`, wantTopic: "a.b", wantData: `[1,2]`},
		{name: "data_verbatim", in: `{"topic":"t","data":{"b":1,"a":1.50}}`, wantTopic: "t", wantData: `{"b":1,"a":1.50}`},
		{name: "data_string", in: `{"topic":"t","data":"hi"}`, wantTopic: "t", wantData: `"hi"`},
		{name: "data_null", in: `{"topic":"t","data":null}`, wantTopic: "t", wantData: `null`},
		{name: "whitespace_around", in: "\n {\"topic\":\"t\",\"data\":0} \r\n", wantTopic: "t", wantData: `0`},
		{name: "extra_fields_ignored", in: `{"topic":"t","data":1,"op":"x","id":"y"}`, wantTopic: "t", wantData: `1`},
		{name: "topic_128", in: `{"topic":"` + strings.Repeat("Z", 128) + `","data":1}`, wantTopic: strings.Repeat("Z", 128), wantData: `1`},

		{name: "empty", in: ``, err: protocol.CodeBadJSON},
		{name: "array", in: `[1]`, err: protocol.CodeBadJSON},
		{name: "truncated", in: `{"topic":"t","data":`, err: protocol.CodeBadJSON},
		{name: "trailing", in: `{"topic":"t","data":1},`, err: protocol.CodeBadJSON},
		{name: "invalid_data", in: `{"topic":"t","data":{a:1}}`, err: protocol.CodeBadJSON},
		{name: "topic_number", in: `{"topic":5,"data":1}`, err: protocol.CodeBadRequest},
		{name: "topic_array", in: `{"topic":["t"],"data":1}`, err: protocol.CodeBadRequest},
		{name: "missing_topic", in: `{"data":1}`, err: protocol.CodeBadRequest},
		{name: "null_topic", in: `{"topic":null,"data":1}`, err: protocol.CodeBadRequest},
		{name: "missing_data", in: `{"topic":"t"}`, err: protocol.CodeBadRequest},
		{name: "empty_object", in: `{}`, err: protocol.CodeBadRequest},
		{name: "empty_topic", in: `{"topic":"","data":1}`, err: protocol.CodeBadTopic},
		{name: "topic_129", in: `{"topic":"` + strings.Repeat("Z", 129) + `","data":1}`, err: protocol.CodeBadTopic},
		{name: "topic_space", in: `{"topic":"a b","data":1}`, err: protocol.CodeBadTopic},
		{name: "topic_slash", in: `{"topic":"a/b","data":1}`, err: protocol.CodeBadTopic},
		{name: "topic_unicode", in: `{"topic":"ü","data":1}`, err: protocol.CodeBadTopic},
		{name: "data_invalid_utf8", in: "{\"topic\":\"t\",\"data\":\"\xff\xfe\"}", err: protocol.CodeBadRequest},
		{name: "data_invalid_utf8_in_object", in: "{\"topic\":\"t\",\"data\":{\"\xff\":1}}", err: protocol.CodeBadRequest},
		{name: "data_truncated_utf8", in: "{\"topic\":\"t\",\"data\":\"\xf0\x9f\x98\"}", err: protocol.CodeBadRequest},
		{name: "data_valid_utf8", in: `{"topic":"t","data":"ünïcødé 😀"}`, wantTopic: "t", wantData: `"ünïcødé 😀"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := protocol.ParsePublish([]byte(tt.in))
			if tt.err != "" {
				checkCommandError(t, err, wantErr{code: tt.err})
				return
			}
			if err != nil {
				t.Fatalf("ParsePublish(%q): %v", tt.in, err)
			}
			if got.Topic != tt.wantTopic || string(got.Data) != tt.wantData {
				t.Errorf("got (%q, %q), want (%q, %q)", got.Topic, got.Data, tt.wantTopic, tt.wantData)
			}
		})
	}
}

func TestValidTopic(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "empty", in: "", want: false},
		{name: "one_letter", in: "a", want: true},
		{name: "all_allowed_classes", in: "AZaz09_.:-", want: true},
		{name: "only_punctuation", in: "._:-", want: true},
		{name: "128_bytes", in: strings.Repeat("x", 128), want: true},
		{name: "129_bytes", in: strings.Repeat("x", 129), want: false},
		{name: "space", in: "a b", want: false},
		{name: "tab", in: "a\tb", want: false},
		{name: "newline", in: "a\n", want: false},
		{name: "nul", in: "a\x00", want: false},
		{name: "slash", in: "a/b", want: false},
		{name: "backslash", in: `a\b`, want: false},
		{name: "quote", in: `a"b`, want: false},
		{name: "star", in: "a*", want: false},
		{name: "hash", in: "#a", want: false},
		{name: "unicode_letter", in: "é", want: false},
		{name: "unicode_digit", in: "٣", want: false},
		{name: "invalid_utf8", in: "a\xff", want: false},
		{name: "del", in: "a\x7f", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := protocol.ValidTopic(tt.in); got != tt.want {
				t.Errorf("ValidTopic(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	t.Run("every_byte", func(t *testing.T) {
		for c := 0; c < 256; c++ {
			want := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '_' || c == '.' || c == ':' || c == '-'
			if got := protocol.ValidTopic(string([]byte{byte(c)})); got != want {
				t.Errorf("ValidTopic(%q) = %v, want %v", byte(c), got, want)
			}
		}
	})
}

func TestOpString(t *testing.T) {
	tests := []struct {
		op   protocol.Op
		want string
	}{
		{protocol.OpSubscribe, "subscribe"},
		{protocol.OpUnsubscribe, "unsubscribe"},
		{protocol.OpPublish, "publish"},
		{0, "op(0)"},
		{200, "op(200)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.op.String(); got != tt.want {
				t.Errorf("Op(%d).String() = %q, want %q", tt.op, got, tt.want)
			}
		})
	}
}
