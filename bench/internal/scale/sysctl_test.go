package scale

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestSysctls(t *testing.T) {
	low := map[string]string{
		sysSomaxconn: "128", sysSynBacklog: "512", sysPortRange: "50000 51000", sysTCPMem: "1000 2000 3000",
	}
	tests := []struct {
		name      string
		values    map[string]string
		conns     int
		perSource int
		dials     int
		root      bool
		wantSet   map[string]string // values during the run
		wantErr   error
	}{
		{name: "enough: nothing changes", values: enough, conns: 20000, perSource: 4000, root: true, wantSet: enough},
		{name: "root raises what is short", values: low, conns: 10000, perSource: 4000, dials: 1024, root: true, wantSet: map[string]string{
			sysSomaxconn: "4096", sysSynBacklog: "4096", sysPortRange: "1024 65535", sysTCPMem: "20000 30000 40000",
		}},
		{name: "not root: a short port range stops the run", values: low, conns: 10000, perSource: 4000, wantSet: low, wantErr: ErrSysctl},
		{name: "not root: a low backlog only warns", values: map[string]string{
			sysSomaxconn: "128", sysSynBacklog: "4096", sysPortRange: "32768 60999", sysTCPMem: "287898 383865 575796",
		}, conns: 100, perSource: 100, wantSet: map[string]string{sysSomaxconn: "128"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeSysctls(t, tc.values)
			s := newSysctls(dir, tc.root, io.Discard)
			if err := s.needs(tc.conns, tc.perSource, tc.dials); err != nil {
				t.Fatal(err)
			}
			if err := s.raise(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("raise = %v, want %v", err, tc.wantErr)
			}
			for name, want := range tc.wantSet {
				if got := readValue(t, s, name); got != strings.Join(strings.Fields(want), " ") {
					t.Errorf("%s during the run = %q, want %q", name, got, want)
				}
			}
			if err := s.restore(); err != nil {
				t.Fatal(err)
			}
			for name, was := range tc.values {
				if got := readValue(t, s, name); got != strings.Join(strings.Fields(was), " ") {
					t.Errorf("%s after restore = %q, want %q", name, got, was)
				}
			}
		})
	}
}

func readValue(t *testing.T, s *sysctls, name string) string {
	t.Helper()
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func TestPlanClients(t *testing.T) {
	tests := []struct {
		conns, perProc, perAddr int
		want                    clientPlan
	}{
		{conns: 400, perProc: 200, perAddr: 100, want: clientPlan{Procs: 2, AddrsPerProc: 2, PerSource: 100}},
		{conns: 20000, perProc: 19000, perAddr: 4000, want: clientPlan{Procs: 2, AddrsPerProc: 3, PerSource: 3334}},
		{conns: 1000000, perProc: 19000, perAddr: 4000, want: clientPlan{Procs: 53, AddrsPerProc: 5, PerSource: 3774}},
	}
	for _, tc := range tests {
		if got := planClients(tc.conns, tc.perProc, tc.perAddr); got != tc.want {
			t.Errorf("planClients(%d, %d, %d) = %+v, want %+v", tc.conns, tc.perProc, tc.perAddr, got, tc.want)
		}
	}
}
