package scenario

import (
	"strings"
	"testing"
)

func TestCatchupObserve(t *testing.T) {
	cases := []struct {
		name                 string
		seqs                 []uint64
		complete             bool
		missing, dup, ooo, x int64
	}{
		{"exact", []uint64{11, 12, 13, 14}, true, 0, 0, 0, 0},
		{"missing", []uint64{11, 12, 14}, false, 1, 0, 0, 0},
		{"duplicate", []uint64{11, 12, 12, 13, 14}, true, 0, 1, 0, 0},
		{"out of order", []uint64{11, 13, 12, 14}, true, 0, 0, 1, 0},
		{"stale and beyond", []uint64{10, 11, 12, 13, 14, 15}, true, 0, 0, 0, 2},
	}
	for _, tc := range cases {
		c := newCatchup(10, 4)
		var done bool
		for _, s := range tc.seqs {
			done = c.observe(s)
		}
		if done != tc.complete || c.missing() != tc.missing || c.dup != tc.dup || c.ooo != tc.ooo || c.extra != tc.x {
			t.Errorf("%s: complete %v missing %d dup %d ooo %d extra %d", tc.name, done, c.missing(), c.dup, c.ooo, c.extra)
		}
	}
}

// resumed returns a client that resumed from 10 and saw seqs.
func resumed(recovered bool, seqs ...uint64) *rclient {
	c := &rclient{resumed: true, gotSub: true, recovered: recovered, cu: newCatchup(10, 3)}
	for _, s := range seqs {
		c.cu.observe(s)
	}
	return c
}

func TestRecoverVerdict(t *testing.T) {
	good := func() *rclient { return resumed(true, 11, 12, 13) }
	cases := []struct {
		name    string
		clients []*rclient
		pass    bool
		want    string
	}{
		{"all caught up", []*rclient{good(), good()}, true, "exactly once"},
		{"one did not reconnect", []*rclient{good(), {cu: newCatchup(10, 3)}}, false, "only 1 of 2"},
		{"recovered false", []*rclient{good(), resumed(false)}, false, "--history-size >= -m (3)"},
		{"no subscribed frame", []*rclient{good(), {resumed: true, cu: newCatchup(10, 3)}}, false, "no subscribed frame"},
		{"duplicate", []*rclient{good(), resumed(true, 11, 11, 12, 13)}, false, "1 duplicate"},
		{"out of order", []*rclient{good(), resumed(true, 12, 11, 13)}, false, "1 out-of-order"},
		{"missing", []*rclient{good(), resumed(true, 11, 13)}, false, "1 missed"},
		{"outside", []*rclient{good(), resumed(true, 9, 11, 12, 13)}, false, "outside the missed range"},
	}
	for _, tc := range cases {
		c := recoverVerdict(tc.clients, 2, 3)
		if c.Pass != tc.pass || !strings.Contains(c.Verdict, tc.want) {
			t.Errorf("%s: pass %v verdict %q", tc.name, c.Pass, c.Verdict)
		}
		if c.Expected != 6 {
			t.Errorf("%s: expected %d", tc.name, c.Expected)
		}
	}
}

func TestParseSubscribed(t *testing.T) {
	s, ok := parseSubscribed([]byte(`{"op":"subscribed","positions":{"a":{"epoch":"E","seq":7}},"recovered":{"a":true}}`))
	if !ok || s.Positions["a"].Epoch != "E" || s.Positions["a"].Seq != 7 || !s.Recovered["a"] {
		t.Fatalf("%+v %v", s, ok)
	}
	if _, ok := parseSubscribed([]byte(`{"topic":"a","seq":1,"data":{}}`)); ok {
		t.Fatal("a delivery parsed as subscribed")
	}
}
