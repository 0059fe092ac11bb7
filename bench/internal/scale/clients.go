package scale

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
)

// closeGoingAway is the close code the clients end with (RFC 6455 1001).
const closeGoingAway = 1001

// clientPlan is how the connections are spread over processes and
// source addresses.
type clientPlan struct {
	// Procs is the client processes.
	Procs int `json:"procs"`
	// AddrsPerProc is the source addresses each process dials from.
	AddrsPerProc int `json:"addrs_per_proc"`
	// PerSource is the most connections one source address carries.
	PerSource int `json:"per_source"`
}

// planClients spreads conns over processes of at most perProc
// connections, each dialing from enough source addresses that one carries
// at most perAddr connections.
func planClients(conns, perProc, perAddr int) clientPlan {
	procs := max(1, ceilDiv(conns, perProc))
	inProc := ceilDiv(conns, procs)
	addrs := max(1, ceilDiv(inProc, perAddr))
	return clientPlan{Procs: procs, AddrsPerProc: addrs, PerSource: ceilDiv(inProc, addrs)}
}

func ceilDiv(a, b int) int { return (a + b - 1) / max(b, 1) }

// topicNames are the run's topics: the common one first, then the groups.
func topicNames(run string, groups int) []string {
	t := []string{"scale." + run + ".all"}
	for i := 0; i < groups; i++ {
		t = append(t, fmt.Sprintf("scale.%s.g%d", run, i))
	}
	return t
}

// clientSpecs are the client processes' specs: every connection dials the
// shared port from its process's own source addresses (from SourceBase
// on, so 127.0.1.x, 127.0.2.x, ...) and subscribes to the common topic and
// one group; they close with 1001 at the end.
func (c *Config) clientSpecs(ws string, topics []string, p clientPlan) ([]fleet.Spec, error) {
	base := net.ParseIP(c.SourceBase)
	if base == nil {
		return nil, fmt.Errorf("%w: --source-base %q is not an IP address", ErrConfig, c.SourceBase)
	}
	spec := fleet.Spec{
		Mode: fleet.ModeHold, WS: ws, Topics: topics, Shared: true, CloseCode: closeGoingAway,
		Conns: c.Conns, DialRate: c.Rate, DialConcurrency: c.DialConcurrency, DialTimeout: 10 * time.Second,
		Pollers: 1, StatEvery: time.Second, TrackMessages: max(c.Broadcasts, ceilDiv(c.GroupPublishes, c.Groups)),
		Drain: c.Drain, Settle: c.Settle, MaxLife: c.Timeout + time.Minute,
	}
	specs, err := fleet.Split(spec, p.Procs, p.AddrsPerProc, base)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClients, err)
	}
	return specs, nil
}

// connect starts the client processes and waits until every one is READY
// (all its dials done), printing a progress line to out about once a
// second. It returns the fleet even on error, for the caller to close.
func (c *Config) connect(ctx context.Context, specs []fleet.Spec, out io.Writer) (fleet.Fleet, fleet.Ready, error) {
	fl, err := fleet.Start(ctx, specs, false, c.Exe)
	if err != nil {
		return nil, fleet.Ready{}, fmt.Errorf("%w: %w", ErrClients, err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(fl, int64(c.Conns), out, stop)
	}()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	ready, err := fl.WaitReady(rctx)
	cancel()
	close(stop)
	<-done
	if err != nil {
		// Not every client process got through its dials: what is up now.
		s := fl.Stat()
		ready = fleet.Ready{Up: s.Up, Failed: s.Failed}
	}
	took := time.Since(start).Seconds()
	fmt.Fprintf(out, "scale: connected %d/%d in %.1fs (%.0f/s) failed=%d\n", ready.Up, c.Conns, took, float64(ready.Up)/max(took, 1e-3), ready.Failed)
	if err != nil {
		return fl, ready, fmt.Errorf("%w: connect phase: %w", ErrClients, err)
	}
	return fl, ready, nil
}

// progress prints the clients' counters (their latest STAT lines) every
// second until stop closes.
func progress(fl fleet.Fleet, target int64, out io.Writer, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start, last, lastAt := time.Now(), int64(0), time.Now()
	for {
		var now time.Time
		select {
		case <-stop:
			return
		case now = <-t.C:
		}
		s := fl.Stat()
		rate := float64(s.Up-last) / max(now.Sub(lastAt).Seconds(), 1e-3)
		last, lastAt = s.Up, now
		fmt.Fprintf(out, "scale: connected %d/%d (%.0f%%) %.0f/s failed=%d closed=%d %.0fs\n",
			s.Up, target, 100*float64(s.Up)/float64(max(target, 1)), rate, s.Failed, s.Lost, now.Sub(start).Seconds())
	}
}
