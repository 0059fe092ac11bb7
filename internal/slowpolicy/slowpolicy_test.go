package slowpolicy_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want slowpolicy.Policy
		err  bool
	}{
		{in: "conflate", want: slowpolicy.Conflate},
		{in: "close", want: slowpolicy.Close},
		{in: "drop-oldest", want: slowpolicy.DropOldest},
		{in: "drop-newest", want: slowpolicy.DropNewest},
		{in: "default", err: true}, // not a choice: it is what "no policy" means
		{in: "", err: true},
		{in: "Conflate", err: true},
		{in: " close", err: true},
		{in: "drop_oldest", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := slowpolicy.Parse(tt.in)
			if tt.err {
				if !errors.Is(err, slowpolicy.ErrUnknown) || got != slowpolicy.Default {
					t.Fatalf("Parse(%q) = %v, %v; want Default, ErrUnknown", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Fatalf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		p    slowpolicy.Policy
		want string
	}{
		{slowpolicy.Default, "default"},
		{slowpolicy.Conflate, "conflate"},
		{slowpolicy.Policy(200), "Policy(200)"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", uint8(tt.p), got, tt.want)
		}
	}
}
