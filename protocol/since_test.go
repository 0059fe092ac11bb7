package protocol_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/protocol"
)

// pos is shorthand for an engine.Position.
func pos(epoch string, seq uint64) engine.Position { return engine.Position{Epoch: epoch, Seq: seq} }

func TestParseCommandSince(t *testing.T) {
	epoch32 := strings.Repeat("e", 32)
	sub := func(since string) string {
		return `{"op":"subscribe","id":5,"topics":["a","b","x:y"],"since":` + since + `}`
	}
	tests := []struct {
		name    string
		in      string
		want    map[string]engine.Position // checked when err is zero
		wantNil bool                       // want a nil Since (else non-nil)
		err     wantErr                    // code "" means success
		msgHas  string                     // the error message contains it
	}{
		{name: "absent", in: `{"op":"subscribe","topics":["a"]}`, wantNil: true},
		{name: "null", in: sub(`null`), wantNil: true},
		{name: "empty_object", in: sub(`{}`), want: map[string]engine.Position{}},
		{name: "one_topic", in: sub(`{"a":{"epoch":"E","seq":12}}`), want: map[string]engine.Position{"a": pos("E", 12)}},
		{name: "every_topic", in: sub(`{"b":{"seq":0,"epoch":"F-_9"},"a":{"epoch":"E","seq":1},"x:y":{"epoch":"G","seq":7}}`),
			want: map[string]engine.Position{"a": pos("E", 1), "b": pos("F-_9", 0), "x:y": pos("G", 7)}},
		{name: "seq_max", in: sub(`{"a":{"epoch":"E","seq":18446744073709551615}}`), want: map[string]engine.Position{"a": pos("E", 1<<64-1)}},
		{name: "epoch_32", in: sub(`{"a":{"epoch":"` + epoch32 + `","seq":3}}`), want: map[string]engine.Position{"a": pos(epoch32, 3)}},
		{name: "whitespace", in: "{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\" : { \"a\" : { \"epoch\" : \"E\" , \"seq\" : 12 } } }",
			want: map[string]engine.Position{"a": pos("E", 12)}},
		{name: "since_before_topics", in: `{"since":{"a":{"epoch":"E","seq":2}},"topics":["a"],"op":"subscribe"}`,
			want: map[string]engine.Position{"a": pos("E", 2)}},
		{name: "extra_entry_field_ignored", in: sub(`{"a":{"epoch":"E","seq":2,"x":[1]}}`), want: map[string]engine.Position{"a": pos("E", 2)}},
		{name: "repeated_key_last_wins", in: sub(`{"a":{"epoch":"E","seq":1},"a":{"epoch":"F","seq":2}}`),
			want: map[string]engine.Position{"a": pos("F", 2)}},
		{name: "null_on_unsubscribe", in: `{"op":"unsubscribe","topics":["a"],"since":null}`, wantNil: true},

		{name: "topic_not_subscribed", in: sub(`{"a":{"epoch":"E","seq":1},"c":{"epoch":"E","seq":1}}`),
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: `"c", which is not in topics`},
		{name: "invalid_topic_not_subscribed", in: sub(`{"a b":{"epoch":"E","seq":1}}`),
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "not in topics"},
		{name: "invalid_utf8_key", in: sub("{\"\xff\":{\"epoch\":\"E\",\"seq\":1}}"),
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "not in topics"},
		{name: "prefix_of_a_topic", in: sub(`{"x":{"epoch":"E","seq":1}}`),
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "not in topics"},
		{name: "epoch_missing", in: sub(`{"a":{"seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "epoch_null", in: sub(`{"a":{"epoch":null,"seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "epoch_empty", in: sub(`{"a":{"epoch":"","seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "epoch_33", in: sub(`{"a":{"epoch":"` + epoch32 + `x","seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "epoch_dot", in: sub(`{"a":{"epoch":"E.1","seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "epoch_colon", in: sub(`{"a":{"epoch":"E:1","seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "epoch_number", in: sub(`{"a":{"epoch":7,"seq":1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "epoch"},
		{name: "seq_missing", in: sub(`{"a":{"epoch":"E"}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_null", in: sub(`{"a":{"epoch":"E","seq":null}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_negative", in: sub(`{"a":{"epoch":"E","seq":-1}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_negative_zero", in: sub(`{"a":{"epoch":"E","seq":-0}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_fraction", in: sub(`{"a":{"epoch":"E","seq":1.5}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_integral_fraction", in: sub(`{"a":{"epoch":"E","seq":1.0}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_exponent", in: sub(`{"a":{"epoch":"E","seq":1e2}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_string", in: sub(`{"a":{"epoch":"E","seq":"12"}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_bool", in: sub(`{"a":{"epoch":"E","seq":true}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "seq_overflow", in: sub(`{"a":{"epoch":"E","seq":18446744073709551616}}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "seq"},
		{name: "entry_number", in: sub(`{"a":5}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: `"a": must be`},
		{name: "entry_null", in: sub(`{"a":null}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: `"a": must be`},
		{name: "entry_array", in: sub(`{"a":[]}`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: `"a": must be`},
		{name: "since_array", in: sub(`[]`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "since must be an object"},
		{name: "since_string", in: sub(`"a:E:1"`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "since must be an object"},
		{name: "since_false", in: sub(`false`), err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 5}, msgHas: "since must be an object"},
		{name: "without_id", in: `{"op":"subscribe","topics":["a"],"since":{"a":{"epoch":"E","seq":-1}}}`,
			err: wantErr{code: protocol.CodeBadRequest}, msgHas: "seq"},
		{name: "on_unsubscribe", in: `{"op":"unsubscribe","id":6,"topics":["a"],"since":{"a":{"epoch":"E","seq":1}}}`,
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 6}, msgHas: "only allowed on subscribe"},
		{name: "empty_on_unsubscribe", in: `{"op":"unsubscribe","id":7,"topics":["a"],"since":{}}`,
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 7}, msgHas: "only allowed on subscribe"},
		{name: "on_publish", in: `{"op":"publish","id":8,"topic":"a","data":1,"since":{"a":{"epoch":"E","seq":1}}}`,
			err: wantErr{code: protocol.CodeBadRequest, hasID: true, id: 8}, msgHas: "only allowed on subscribe"},
		{name: "bad_topic_comes_first", in: `{"op":"subscribe","id":9,"topics":["a/b"],"since":{"c":{"epoch":"E","seq":1}}}`,
			err: wantErr{code: protocol.CodeBadTopic, hasID: true, id: 9}},
		{name: "unknown_op_comes_first", in: `{"op":"resume","id":10,"topics":["a"],"since":{"a":{"epoch":"E","seq":1}}}`,
			err: wantErr{code: protocol.CodeUnknownOp, hasID: true, id: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := protocol.ParseCommand([]byte(tt.in))
			if tt.err.code != "" {
				checkCommandError(t, err, tt.err)
				var cerr *protocol.CommandError
				if errors.As(err, &cerr) && !strings.Contains(cerr.Message, tt.msgHas) {
					t.Errorf("message %q does not say %q", cerr.Message, tt.msgHas)
				}
				if got.Since != nil {
					t.Errorf("failed parse returned Since %v", got.Since)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.in, err)
			}
			if (got.Since == nil) != tt.wantNil {
				t.Errorf("Since = %#v, want nil: %v", got.Since, tt.wantNil)
			}
			if !maps.Equal(got.Since, tt.want) {
				t.Errorf("Since = %v, want %v", got.Since, tt.want)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	topic128, epoch32 := strings.Repeat("t", 128), strings.Repeat("e", 32)
	tests := []struct {
		name   string
		in     string
		want   map[string]engine.Position // on success
		msgHas string                     // on failure: the message contains it
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "a:E:12", want: map[string]engine.Position{"a": pos("E", 12)}},
		{name: "two", in: "a:E:12,b:F-_0:0", want: map[string]engine.Position{"a": pos("E", 12), "b": pos("F-_0", 0)}},
		{name: "topic_with_colons", in: "x:y:z:E:5", want: map[string]engine.Position{"x:y:z": pos("E", 5)}},
		{name: "topic_only_colon", in: "::E:1", want: map[string]engine.Position{":": pos("E", 1)}},
		{name: "topic_dots_dashes", in: "a.b-c_d:q3F8aZ0-x_c:9", want: map[string]engine.Position{"a.b-c_d": pos("q3F8aZ0-x_c", 9)}},
		{name: "leading_zeros", in: "a:E:007", want: map[string]engine.Position{"a": pos("E", 7)}},
		{name: "seq_max", in: "a:E:18446744073709551615", want: map[string]engine.Position{"a": pos("E", 1<<64-1)}},
		{name: "longest_names", in: topic128 + ":" + epoch32 + ":3", want: map[string]engine.Position{topic128: pos(epoch32, 3)}},
		{name: "same_epoch_two_topics", in: "a:E:1,b:E:1", want: map[string]engine.Position{"a": pos("E", 1), "b": pos("E", 1)}},

		{name: "no_colon", in: "a", msgHas: "item 1: want topic:epoch:seq"},
		{name: "one_colon", in: "a:12", msgHas: "item 1: want topic:epoch:seq"},
		{name: "only_commas", in: ",", msgHas: "item 1: want topic:epoch:seq"},
		{name: "trailing_comma", in: "a:E:1,", msgHas: "item 2: want"},
		{name: "empty_middle_item", in: "a:E:1,,b:F:2", msgHas: "item 2: want"},
		{name: "empty_topic", in: ":E:1", msgHas: "item 1: topic names"},
		{name: "topic_129", in: topic128 + "t:E:1", msgHas: "topic names"},
		{name: "topic_space", in: "a b:E:1", msgHas: "topic names"},
		{name: "topic_slash", in: "a/b:E:1", msgHas: "topic names"},
		{name: "leading_space", in: " a:E:1", msgHas: "topic names"},
		{name: "empty_epoch", in: "a::1", msgHas: "item 1: epoch"},
		{name: "epoch_33", in: "a:" + epoch32 + "e:1", msgHas: "epoch"},
		{name: "epoch_dot", in: "a:E.x:1", msgHas: "epoch"},
		{name: "epoch_unicode", in: "a:é:1", msgHas: "epoch"},
		{name: "empty_seq", in: "a:E:", msgHas: "item 1: seq"},
		{name: "seq_negative", in: "a:E:-1", msgHas: "seq"},
		{name: "seq_plus", in: "a:E:+1", msgHas: "seq"},
		{name: "seq_fraction", in: "a:E:1.5", msgHas: "seq"},
		{name: "seq_exponent", in: "a:E:1e2", msgHas: "seq"},
		{name: "seq_hex", in: "a:E:0x10", msgHas: "seq"},
		{name: "seq_underscore", in: "a:E:1_000", msgHas: "seq"},
		{name: "seq_trailing_space", in: "a:E:1 ", msgHas: "seq"},
		{name: "seq_overflow", in: "a:E:18446744073709551616", msgHas: "seq"},
		{name: "second_item_bad", in: "a:E:1,b:F:x", msgHas: "item 2: seq"},
		{name: "topic_repeated", in: "a:E:1,b:F:2,a:E:1", msgHas: `item 3: topic "a" is named twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := protocol.ParseSince(tt.in)
			if tt.msgHas != "" {
				checkCommandError(t, err, wantErr{code: protocol.CodeBadRequest})
				var cerr *protocol.CommandError
				if errors.As(err, &cerr) && !strings.Contains(cerr.Message, tt.msgHas) {
					t.Errorf("message %q does not say %q", cerr.Message, tt.msgHas)
				}
				if got != nil {
					t.Errorf("failed parse returned %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSince(%q): %v", tt.in, err)
			}
			if (got == nil) != (tt.want == nil) || !maps.Equal(got, tt.want) {
				t.Errorf("ParseSince(%q) = %#v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
