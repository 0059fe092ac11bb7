package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "usage: bench SCENARIO"},
		{[]string{"help"}, 0, "scenarios:"},
		{[]string{"nope"}, 2, `unknown scenario "nope"`},
		{[]string{"connect", "-h"}, 0, "-baseline"},
		{[]string{"broadcast", "-h"}, 0, "-publishers"},
		{[]string{"throughput", "-h"}, 0, "-duration"},
		{[]string{"churn", "-h"}, 0, "-hold-conn"},
		{[]string{"slow", "-h"}, 0, "never read"},
		{[]string{"connect", "extra"}, 2, "unexpected arguments"},
		{[]string{"connect", "--no-such-flag"}, 2, "not defined"},
		{[]string{"broadcast", "-m", "0"}, 1, "-m must be >= 1"},
		{[]string{"connect", "--procs", "0"}, 1, "--procs must be >= 1"},
		{[]string{"churn", "--rate", "0"}, 1, "--rate and --duration"},
		{[]string{"slow", "-k", "-1"}, 1, "-k must be >= 0"},
		{[]string{"suite", "-h"}, 0, "-server name=path [args]"},
		{[]string{"suite"}, 1, "at least one --server"},
		{[]string{"suite", "--server", "nope"}, 2, "want name=path"},
		{[]string{"suite", "--server", "a=x", "--only", "bogus"}, 1, `unknown scenario "bogus"`},
		{[]string{"suite", "extra"}, 2, "unexpected arguments"},
		{[]string{"scale-report", "-h"}, 0, "usage: bench scale-report --html FILE"},
		{[]string{"scale-report", "--no-such-flag"}, 2, "not defined"},
		{[]string{"scale-report", "a.json"}, 1, "--html is required"},
		{[]string{"scale-report", "--html", "x.html"}, 1, "no results file"},
		{[]string{"scale-report", "--html", "x.html", "no-such-file.json"}, 1, "no-such-file.json: no such file"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.err) {
			t.Errorf("%v: code %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), tc.code, tc.err)
		}
	}
}
