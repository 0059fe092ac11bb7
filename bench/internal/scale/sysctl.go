package scale

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Kernel settings the run checks.
const (
	sysSomaxconn  = "net.core.somaxconn"
	sysSynBacklog = "net.ipv4.tcp_max_syn_backlog"
	sysPortRange  = "net.ipv4.ip_local_port_range"
	sysTCPMem     = "net.ipv4.tcp_mem"
)

// minBacklog is the least listen backlog the run wants (somaxconn and the
// SYN backlog; Go's listeners take somaxconn); backlogPerDial more for
// each dial in flight, so that the dials on one shared port never
// overflow it.
const (
	minBacklog     = 1024
	backlogPerDial = 4
)

// portMargin is the ephemeral ports left over per source address.
const portMargin = 1000

// Sysctl is one kernel setting as the run found, needed and left it.
type Sysctl struct {
	// Name is the dotted name (net.core.somaxconn).
	Name string `json:"name"`
	// Was is the value found.
	Was string `json:"was"`
	// Need is the value the run asked for ("" when Was was enough).
	Need string `json:"need,omitempty"`
	// Set tells whether the run wrote Need (and restores Was at the end).
	Set bool `json:"set"`
	// Restored tells whether Was was written back.
	Restored bool `json:"restored"`
	// Why says what the value is for.
	Why string `json:"why"`
}

// sysctls checks, raises and restores kernel settings under dir (/proc/sys).
type sysctls struct {
	dir  string
	root bool // may write
	out  io.Writer
	list []Sysctl
}

// newSysctls returns the settings under dir (empty: /proc/sys), written
// only when root.
func newSysctls(dir string, root bool, out io.Writer) *sysctls {
	if dir == "" {
		dir = "/proc/sys"
	}
	return &sysctls{dir: dir, root: root, out: out}
}

func (s *sysctls) path(name string) string {
	return filepath.Join(s.dir, filepath.FromSlash(strings.ReplaceAll(name, ".", "/")))
}

func (s *sysctls) read(name string) ([]int64, string, error) {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", ErrSysctl, name, err)
	}
	raw := strings.Join(strings.Fields(string(b)), " ")
	var vals []int64
	for _, f := range strings.Fields(raw) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s = %q: %w", ErrSysctl, name, raw, err)
		}
		vals = append(vals, v)
	}
	return vals, raw, nil
}

// needs computes what a run of conns connections, at most perSource from
// one source address and dials in flight at once, asks of each setting:
// the new value, or "" when the current one is enough.
func (s *sysctls) needs(conns, perSource, dials int) error {
	pagesPerConn := int64(2) // one page in flight on each end of a loopback connection
	backlog := int64(max(minBacklog, backlogPerDial*dials))
	checks := []struct {
		name, why string
		need      func(v []int64) string
	}{
		{sysSomaxconn, "listen backlog of the shared port", func(v []int64) string { return atLeast(v, backlog) }},
		{sysSynBacklog, "half-open connections while dialing", func(v []int64) string { return atLeast(v, backlog) }},
		{sysPortRange, fmt.Sprintf("ephemeral ports: %d connections per source address", perSource), func(v []int64) string {
			if len(v) == 2 && v[1]-v[0]+1 >= int64(perSource+portMargin) {
				return ""
			}
			return "1024 65535"
		}},
		{sysTCPMem, fmt.Sprintf("TCP memory (pages) for %d sockets", 2*conns), func(v []int64) string {
			need := int64(conns) * pagesPerConn
			if len(v) != 3 || v[1] >= need {
				return ""
			}
			return fmt.Sprintf("%d %d %d", max(v[0], need), max(v[1], need*3/2), max(v[2], need*2))
		}},
	}
	for _, c := range checks {
		v, raw, err := s.read(c.name)
		if err != nil {
			return err
		}
		s.list = append(s.list, Sysctl{Name: c.name, Was: raw, Need: c.need(v), Why: c.why})
	}
	return nil
}

// atLeast is min as a value when the single value in v is below it.
func atLeast(v []int64, min int64) string {
	if len(v) == 1 && v[0] >= min {
		return ""
	}
	return strconv.FormatInt(min, 10)
}

// raise writes every needed value (as root) and says so; without root it
// says what would be needed. A port range too small for the run is an
// error then: the dials would fail.
func (s *sysctls) raise() error {
	for i := range s.list {
		c := &s.list[i]
		if c.Need == "" {
			continue
		}
		if !s.root {
			fmt.Fprintf(s.out, "sysctl %s is %q; the run needs %q (%s): run as root to raise it\n", c.Name, c.Was, c.Need, c.Why)
			if c.Name == sysPortRange {
				return fmt.Errorf("%w: %s %q is too small (%s)", ErrSysctl, c.Name, c.Was, c.Why)
			}
			continue
		}
		if err := os.WriteFile(s.path(c.Name), []byte(c.Need+"\n"), 0o644); err != nil {
			return fmt.Errorf("%w: set %s: %w", ErrSysctl, c.Name, err)
		}
		c.Set = true
		fmt.Fprintf(s.out, "sysctl %s: %q -> %q (%s)\n", c.Name, c.Was, c.Need, c.Why)
	}
	return nil
}

// restore writes back every value raise changed, last first.
func (s *sysctls) restore() error {
	var first error
	for i := len(s.list) - 1; i >= 0; i-- {
		c := &s.list[i]
		if !c.Set || c.Restored {
			continue
		}
		if err := os.WriteFile(s.path(c.Name), []byte(c.Was+"\n"), 0o644); err != nil {
			if first == nil {
				first = fmt.Errorf("%w: restore %s: %w", ErrSysctl, c.Name, err)
			}
			continue
		}
		c.Restored = true
		fmt.Fprintf(s.out, "sysctl %s: restored %q\n", c.Name, c.Was)
	}
	return first
}
