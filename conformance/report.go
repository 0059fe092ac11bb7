package conformance

import (
	"fmt"
	"io"
	"strings"
)

// Totals counts results by status.
type Totals struct {
	Passed, Failed, KnownFailed, KnownPassed int
}

// Count tallies rs.
func Count(rs []Result) Totals {
	var t Totals
	for _, r := range rs {
		switch r.Status {
		case Pass:
			t.Passed++
		case Fail:
			t.Failed++
		case KnownFail:
			t.KnownFailed++
		case KnownPass:
			t.KnownPassed++
		}
	}
	return t
}

// String renders the totals as "N passed, M failed" (plus known failures).
func (t Totals) String() string {
	s := fmt.Sprintf("%d passed, %d failed", t.Passed, t.Failed)
	if t.KnownFailed+t.KnownPassed > 0 {
		s += fmt.Sprintf(" (known server failures, not counted: %d failed, %d passed this run)", t.KnownFailed, t.KnownPassed)
	}
	return s
}

// Line is a result's report line:
//
//	PASS 5.3 §5.4 text in 3 fragments with pings interleaved → pongs, then delivered
//	FAIL 7.9.1 §7.4.2 close with invalid code 0 → 1002 (got close 1000, want close 1002)
func (r Result) Line() string {
	s := fmt.Sprintf("%s %s %s %s", r.Status, r.Case.ID, r.Case.Section, r.Case.Desc)
	if r.Detail != "" {
		s += " (" + r.Detail + ")"
	}
	if r.Status == KnownPass {
		s += " (marked as a known failure; passed this run)"
	}
	return s
}

// WriteReport prints one line per result, the totals, and then each known
// server failure's explanation once, with the cases it covers. It returns
// the totals.
func WriteReport(w io.Writer, rs []Result) Totals {
	for _, r := range rs {
		fmt.Fprintln(w, r.Line())
	}
	return writeTail(w, rs)
}

// WriteSummary is WriteReport without the PASS lines.
func WriteSummary(w io.Writer, rs []Result) Totals {
	for _, r := range rs {
		if r.Status != Pass {
			fmt.Fprintln(w, r.Line())
		}
	}
	return writeTail(w, rs)
}

// writeTail prints the totals and the known failures' explanations.
func writeTail(w io.Writer, rs []Result) Totals {
	t := Count(rs)
	fmt.Fprintln(w, t)
	var reasons []string
	ids := map[string][]string{}
	for _, r := range rs {
		if r.Status != KnownFail && r.Status != KnownPass {
			continue
		}
		why := r.Case.Known
		if _, ok := ids[why]; !ok {
			reasons = append(reasons, why)
		}
		ids[why] = append(ids[why], fmt.Sprintf("%s (%s)", r.Case.ID, strings.ToLower(r.Status.String())))
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w, "known server failures:")
		for _, why := range reasons {
			fmt.Fprintf(w, "- %s\n  cases: %s\n", why, strings.Join(ids[why], ", "))
		}
	}
	return t
}
