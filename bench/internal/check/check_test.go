package check

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestParseDeliveryServerLayout(t *testing.T) {
	data := AppendData(nil, 1700000000123456789, 200)
	if len(data) != 200 {
		t.Fatalf("data is %d bytes, want 200: %s", len(data), data)
	}
	// The exact bytes wspushd writes.
	env := protocol.AppendDelivery(nil, "scores.eu-1", 18446744073709551615, data)
	d, ok := ParseDelivery(env)
	if !ok {
		t.Fatalf("not parsed: %s", env)
	}
	if string(d.Topic) != "scores.eu-1" || d.Seq != 18446744073709551615 || string(d.Data) != string(data) {
		t.Fatalf("got %q %d %q", d.Topic, d.Seq, d.Data)
	}
	if d.SentNs != 1700000000123456789 {
		t.Fatalf("sent %d", d.SentNs)
	}
	if allocs := testing.AllocsPerRun(100, func() { ParseDelivery(env) }); allocs != 0 {
		t.Errorf("exact parse allocates %v times", allocs)
	}
}

func TestParseDelivery(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		topic string
		seq   uint64
		sent  int64
	}{
		{`{"topic":"a","seq":1,"data":{"t":5,"p":"x"}}`, true, "a", 1, 5},
		{`{"topic":"a","seq":17,"data":{"hello":"world"}}`, true, "a", 17, 0},
		{`{"topic":"a","seq":2,"data":7}`, true, "a", 2, 0},
		// Another spelling of the same object goes through encoding/json.
		{`{ "seq": 3, "topic": "b", "data": {"t": 9} }`, true, "b", 3, 9},
		{`{"data":{"t":1},"topic":"c","seq":4}`, true, "c", 4, 1},
		// Not deliveries.
		{`{"op":"ack","id":1}`, false, "", 0, 0},
		{`{"op":"error","code":"bad_json","message":"x"}`, false, "", 0, 0},
		{`{"topic":"a","seq":-1,"data":1}`, false, "", 0, 0},
		{`{"topic":"a","seq":1}`, false, "", 0, 0},
		{`{"topic":"a","seq":1,"data":`, false, "", 0, 0},
		{`not json`, false, "", 0, 0},
		{``, false, "", 0, 0},
	} {
		d, ok := ParseDelivery([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("%s: ok=%v", tc.in, ok)
			continue
		}
		if ok && (string(d.Topic) != tc.topic || d.Seq != tc.seq || d.SentNs != tc.sent) {
			t.Errorf("%s: got %q %d %d", tc.in, d.Topic, d.Seq, d.SentNs)
		}
	}
}

func TestAppendDataSmall(t *testing.T) {
	// Smaller than the fixed part: no padding, still valid.
	d := AppendData(nil, 42, 1)
	if string(d) != `{"t":42,"p":""}` {
		t.Fatalf("%s", d)
	}
	if SentTime(d) != 42 {
		t.Fatal("t lost")
	}
}

// run feeds seqs to a fresh Seq and returns its counts against expectLast.
func run(seqs []uint64, expectLast uint64) (Counts, []Verdict) {
	var s Seq
	var vs []Verdict
	for _, q := range seqs {
		vs = append(vs, s.Observe(q))
	}
	var c Counts
	c.Add(&s, expectLast)
	return c, vs
}

func TestSeq(t *testing.T) {
	for _, tc := range []struct {
		seqs                  []uint64
		last                  uint64
		missing, dup, ooo, gp uint64
	}{
		{[]uint64{1, 2, 3}, 3, 0, 0, 0, 0},
		{nil, 0, 0, 0, 0, 0},
		{nil, 4, 4, 0, 0, 0},                       // nothing arrived
		{[]uint64{1, 3}, 3, 1, 0, 0, 1},            // 2 missing
		{[]uint64{2, 3}, 3, 1, 0, 0, 1},            // the head is missing
		{[]uint64{1}, 5, 4, 0, 0, 0},               // the tail is missing
		{[]uint64{1, 3, 2}, 3, 0, 0, 1, 1},         // 2 late: out of order, not missing
		{[]uint64{1, 2, 2}, 2, 0, 1, 0, 0},         // duplicate of the last
		{[]uint64{1, 2, 3, 1}, 3, 0, 1, 0, 0},      // duplicate of an old one
		{[]uint64{1, 3, 2, 2}, 3, 0, 1, 1, 1},      // late, then again
		{[]uint64{1, 10, 5, 3, 7}, 10, 5, 0, 3, 1}, // a hole split three times
		{[]uint64{1, 10, 2, 9, 10}, 12, 8, 1, 2, 1},
		{[]uint64{3, 1, 2, 5, 4}, 5, 0, 0, 3, 2},
	} {
		c, vs := run(tc.seqs, tc.last)
		if c.Missing != tc.missing || c.Dup != tc.dup || c.OOO != tc.ooo || c.Gaps != tc.gp {
			t.Errorf("%v expect %d: missing %d dup %d ooo %d gaps %d (verdicts %v), want %d %d %d %d",
				tc.seqs, tc.last, c.Missing, c.Dup, c.OOO, c.Gaps, vs, tc.missing, tc.dup, tc.ooo, tc.gp)
		}
		if c.Received != uint64(len(tc.seqs)) {
			t.Errorf("%v: received %d", tc.seqs, c.Received)
		}
	}
}

func TestSeqVerdicts(t *testing.T) {
	_, vs := run([]uint64{1, 3, 2, 2, 4}, 4)
	want := []Verdict{InOrder, Gap, OutOfOrder, Duplicate, InOrder}
	if fmt.Sprint(vs) != fmt.Sprint(want) {
		t.Fatalf("verdicts %v, want %v", vs, want)
	}
}

// TestSeqManyHoles overflows MaxHoles: missing stays exact.
func TestSeqManyHoles(t *testing.T) {
	var s Seq
	n := uint64(MaxHoles + 100)
	for i := uint64(1); i <= n; i++ {
		s.Observe(2 * i) // every odd seq is missing
	}
	if got := s.Missing(2 * n); got != n {
		t.Fatalf("missing %d, want %d", got, n)
	}
	if len(s.holes) > MaxHoles {
		t.Fatalf("%d holes kept", len(s.holes))
	}
	// A late arrival in a remembered hole is out of order.
	if v := s.Observe(2*n - 1); v != OutOfOrder {
		t.Fatalf("late seq: %v", v)
	}
	// One in a forgotten hole counts as a duplicate (documented).
	if v := s.Observe(1); v != Duplicate {
		t.Fatalf("forgotten seq: %v", v)
	}
}

func TestMsgTable(t *testing.T) {
	a := NewMsgTable(2, 3)
	a.Observe(0, 1, 10)
	a.Observe(0, 1, 30)
	a.Observe(1, 3, 5)
	a.Observe(1, 4, 99) // beyond the table: ignored
	a.Observe(0, 0, 99) // seq 0: ignored
	b := NewMsgTable(2, 3)
	b.Observe(0, 1, 20)
	b.Observe(1, 3, 50)
	m := a.Export()
	m.Merge(b.Export())
	if m.MaxLatNs[0][0] != 30 || m.Count[0][0] != 3 || m.MaxLatNs[1][2] != 50 || m.Count[1][2] != 2 {
		t.Fatalf("%+v", m)
	}
	var empty Msgs
	empty.Merge(m)
	if empty.Count[1][2] != 2 {
		t.Fatalf("merge into empty: %+v", empty)
	}
	if z := NewMsgTable(3, 0).Export(); z.Count != nil {
		t.Fatalf("zero table exported %+v", z)
	}
}
