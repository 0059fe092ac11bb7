package server

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/protocol"
)

func TestParseTopicPolicy(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // String() of the result; with err, a part of the error
		err  bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "blank", in: "  ", want: ""},
		{name: "brief example", in: "prices.*=conflate,chat.*=close", want: "prices.*=conflate,chat.*=close"},
		{name: "every policy", in: "a=conflate,b=close,c=drop-oldest,d=drop-newest", want: "a=conflate,b=close,c=drop-oldest,d=drop-newest"},
		{name: "blanks trimmed", in: " prices.* = conflate , chat.*=close ", want: "prices.*=conflate,chat.*=close"},
		{name: "stars anywhere", in: "*=close,*.eu=conflate,a*b*c=drop-newest,**=drop-oldest", want: "*=close,*.eu=conflate,a*b*c=drop-newest,**=drop-oldest"},
		{name: "every topic byte", in: "aZ09_.:-=close", want: "aZ09_.:-=close"},
		{name: "glob of the longest topic", in: strings.Repeat("x", protocol.MaxTopicLen) + "*=close",
			want: strings.Repeat("x", protocol.MaxTopicLen) + "*=close"},
		{name: "no equals", in: "prices.*=conflate,chat.*", err: true, want: `entry "chat.*": want glob=policy`},
		{name: "empty glob", in: "=close", err: true, want: `entry "=close": empty glob`},
		{name: "empty entry", in: "a=close,,b=close", err: true, want: `entry "": want glob=policy`},
		{name: "trailing comma", in: "a=close,", err: true, want: `entry ""`},
		{name: "unknown policy", in: "a=close,b=keep-latest", err: true, want: `entry "b=keep-latest": slowpolicy: unknown policy "keep-latest"`},
		{name: "default is no policy", in: "a=default", err: true, want: `unknown policy "default"`},
		{name: "empty policy", in: "a=", err: true, want: `entry "a="`},
		{name: "user stream glob", in: "@*=conflate", err: true, want: `entry "@*=conflate": glob byte '@'`},
		{name: "control glob", in: "#*=close", err: true, want: `glob byte '#'`},
		{name: "question mark", in: "a?=close", err: true, want: `glob byte '?'`},
		{name: "class", in: "[ab]=close", err: true, want: `glob byte '['`},
		{name: "slash", in: "a/b=close", err: true, want: `glob byte '/'`},
		{name: "inner blank", in: "a b=close", err: true, want: `glob byte ' '`},
		{name: "second equals", in: "a=b=close", err: true, want: `entry "a=b=close"`},
		{name: "longer than any topic", in: strings.Repeat("x", protocol.MaxTopicLen+1) + "=close", err: true, want: "longer than any topic"},
		{name: "glob twice", in: "a.*=close,b=close,a.*=conflate", err: true, want: `entry "a.*=conflate": glob "a.*" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseTopicPolicy(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("ParseTopicPolicy(%q) = %v; want ErrBadConfig mentioning %q", tt.in, err, tt.want)
				}
				if len(p.rules) != 0 {
					t.Fatalf("a failed parse returned %d entries", len(p.rules))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTopicPolicy(%q): %v", tt.in, err)
			}
			if got := p.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			var set TopicPolicy
			if err := set.Set(tt.in); err != nil || set.String() != tt.want {
				t.Fatalf("Set(%q) = %v, String() %q; want %q", tt.in, err, set.String(), tt.want)
			}
		})
	}
}

// TestTopicPolicyMatch: the first matching glob wins, '*' matches any run
// of bytes, and names that are not topics never match.
func TestTopicPolicyMatch(t *testing.T) {
	p, err := ParseTopicPolicy("prices.*=conflate,chat.*=close,*.eu=drop-newest,*=drop-oldest")
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := ParseTopicPolicy("prices.*=conflate,a*b=close")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p     *TopicPolicy
		topic string
		want  slowpolicy.Policy
	}{
		{&p, "prices.ABC", slowpolicy.Conflate},
		{&p, "prices.", slowpolicy.Conflate}, // '*' matches nothing too
		{&p, "prices.a.eu", slowpolicy.Conflate},
		{&p, "chat.eu", slowpolicy.Close}, // chat.* comes before *.eu
		{&p, "news.eu", slowpolicy.DropNewest},
		{&p, "prices", slowpolicy.DropOldest}, // no '.': only * matches
		{&p, "anything", slowpolicy.DropOldest},
		{&p, "@42", slowpolicy.Default},       // a user's stream is no topic
		{&p, "@prices.x", slowpolicy.Default}, // not even when it looks like one
		{&p, controlTopic, slowpolicy.Default},
		{&p, "", slowpolicy.Default},
		{&narrow, "prices.x", slowpolicy.Conflate},
		{&narrow, "xprices.x", slowpolicy.Default},
		{&narrow, "ab", slowpolicy.Close},
		{&narrow, "a-b-b", slowpolicy.Close},
		{&narrow, "a-b-c", slowpolicy.Default},
		{&narrow, "ba", slowpolicy.Default},
		{&TopicPolicy{}, "prices.x", slowpolicy.Default},
	}
	for _, tt := range tests {
		if got := tt.p.policy(tt.topic); got != tt.want {
			t.Errorf("%q under %q: %v, want %v", tt.topic, tt.p.String(), got, tt.want)
		}
	}
}

// FuzzTopicPolicy: whatever the value, parsing fails with ErrBadConfig or
// gives entries that print back to themselves, and a topic's policy is the
// first entry whose glob, read as a regular expression ('*' as .*),
// matches it; a name that is not a topic gets Default.
func FuzzTopicPolicy(f *testing.F) {
	for _, seed := range [][2]string{
		{"prices.*=conflate,chat.*=close", "prices.ABC"},
		{"prices.*=conflate,chat.*=close", "chat.room"},
		{"*=drop-oldest", "@42"},
		{"*.eu=drop-newest,*=close", "news.eu"},
		{"a*b*c=conflate", "aXbYc"},
		{"a*b*c=conflate", "acb"},
		{"**=close", ""},
		{" x = close ,", "x"},
		{"a=b=c", "a"},
		{"@*=conflate", "@1"},
		{"[a]=close", "a"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, spec, topic string) {
		p, err := ParseTopicPolicy(spec)
		if err != nil {
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("ParseTopicPolicy(%q) = %v, not an ErrBadConfig", spec, err)
			}
			return
		}
		again, err := ParseTopicPolicy(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("%q prints as %q, which parses to %q, %v", spec, p.String(), again.String(), err)
		}
		want := slowpolicy.Default
		if protocol.ValidTopic(topic) {
			for _, r := range p.rules {
				re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(r.glob), `\*`, ".*") + "$")
				if re.MatchString(topic) {
					want = r.policy
					break
				}
			}
		}
		if got := p.policy(topic); got != want {
			t.Fatalf("%q under %q: %v, want %v", topic, p.String(), got, want)
		}
	})
}
