package suite

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
)

// runDedicated runs, against server s, the scenarios that need a server of
// their own (Scenario.ServerArgs, e.g. recover's --history-size): for each,
// s is started again with those arguments added, the scenario runs, and
// the server is stopped.
func (c *Config) runDedicated(ctx context.Context, res *Results, round int, s ServerSpec, out io.Writer) {
	for _, sc := range res.Scenarios {
		if len(sc.ServerArgs) == 0 || !runs(s, sc.ID) || ctx.Err() != nil {
			continue
		}
		spec := s
		spec.Args = append(slices.Clone(s.Args), sc.ServerArgs...)
		base := filepath.Join(res.RawDir, fmt.Sprintf("r%d-%s-%s", round, s.Name, sc.ID))
		sr := ServerRun{Round: round, Server: s.Name, Log: base + ".server.log"}
		srv, err := c.launch(ctx, spec, sr.Log)
		if err != nil {
			sr.Error = err.Error()
			res.ServerRuns = append(res.ServerRuns, sr)
			res.Runs = append(res.Runs, RunRecord{Round: round, Server: s.Name, Scenario: sc.ID, Exit: -1, Error: fmt.Sprintf("%v: %v", errNoServer, err)})
			fmt.Fprintf(out, "[round %d/%d %s] %s: %v\n", round, c.Rounds, s.Name, sc.ID, err)
			continue
		}
		sr.Endpoint = srv.Endpoint()
		rec := c.runOne(ctx, round, s, sc, sr.Endpoint, base, s.Kind == KindWspushd && sc.ID == c.CPUProfile)
		res.Runs = append(res.Runs, rec)
		fmt.Fprintf(out, "[round %d/%d %s] %s\n", round, c.Rounds, s.Name, progressLine(rec))
		if sr.Stopped, err = srv.Stop(); err != nil {
			sr.Error = err.Error()
			fmt.Fprintf(out, "[round %d/%d %s] stop: %v\n", round, c.Rounds, s.Name, err)
		}
		res.ServerRuns = append(res.ServerRuns, sr)
	}
}
