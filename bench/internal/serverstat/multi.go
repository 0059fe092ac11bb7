package serverstat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SplitList splits a comma-separated list of addresses (or pids), trimming
// blanks and dropping empty items: "a, b," is [a b].
func SplitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// PIDs is a flag.Value holding one or more process ids, given as a
// comma-separated list ("123" or "123,456").
type PIDs []int

// String implements flag.Value.
func (p *PIDs) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value: it replaces the list.
func (p *PIDs) Set(s string) error {
	var out PIDs
	for _, f := range SplitList(s) {
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return fmt.Errorf("bad pid %q", f)
		}
		if v > 0 {
			out = append(out, v)
		}
	}
	*p = out
	return nil
}

// First returns the first pid (0: none).
func (p PIDs) First() int {
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

// ReadProcs reads every pid's numbers and sums them (RSS, fds, threads and
// CPU are all totals over the processes of a cluster).
func ReadProcs(pids []int) (Proc, error) {
	var sum Proc
	if len(pids) == 0 {
		return sum, errors.New("serverstat: no pid")
	}
	for _, pid := range pids {
		p, err := ReadProc(pid)
		if err != nil {
			return sum, err
		}
		sum.RSS += p.RSS
		sum.FDs += p.FDs
		sum.Threads += p.Threads
		sum.CPU += p.CPU
	}
	return sum, nil
}

// TakeAll measures several servers as one: the /proc numbers of pids and
// the selected metrics and histograms of every api, each summed (every
// selected metric is a count or a size, and every histogram counts
// observations, so the sum is the cluster's). A metric missing from any
// page is left out.
func TakeAll(ctx context.Context, pids []int, apis []string) Snapshot {
	if len(pids) <= 1 && len(apis) <= 1 {
		pid, api := 0, ""
		if len(pids) == 1 {
			pid = pids[0]
		}
		if len(apis) == 1 {
			api = apis[0]
		}
		return Take(ctx, pid, api)
	}
	s := Take(ctx, 0, "")
	if len(pids) > 0 {
		if p, err := ReadProcs(pids); err != nil {
			s.Errors = append(s.Errors, err.Error())
		} else {
			s.Proc = &p
		}
	}
	for i, api := range apis {
		one := Take(ctx, 0, api)
		s.Errors = append(s.Errors, one.Errors...)
		if one.Metrics == nil {
			s.Metrics, s.Hists = nil, nil
			continue
		}
		if i == 0 {
			s.Metrics, s.Hists = one.Metrics, one.Hists
			continue
		}
		for k, v := range s.Metrics {
			if w, ok := one.Metrics[k]; ok {
				s.Metrics[k] = v + w
			} else {
				delete(s.Metrics, k)
			}
		}
		s.Hists = addHists(s.Hists, one.Hists)
	}
	return s
}

// addHists adds o's histograms into sum, keeping only those both hold with
// the same bounds.
func addHists(sum, o map[string]Hist) map[string]Hist {
	for k, h := range sum {
		w, ok := o[k]
		if !ok {
			delete(sum, k)
			continue
		}
		if t, err := h.Add(w); err == nil {
			sum[k] = t
		} else {
			delete(sum, k)
		}
	}
	return sum
}
