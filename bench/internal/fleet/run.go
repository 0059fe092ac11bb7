package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/bench/internal/wsclient"
)

// Control connects a runner to its parent: in-process channels or the
// child's stdin/stdout.
type Control interface {
	// Ready reports the barrier.
	Ready(Ready)
	// Stat reports live counters.
	Stat(Stat)
	// WaitFinish blocks until the parent says FINISH (or ctx ends).
	WaitFinish(ctx context.Context) (Finish, error)
}

// counters are a runner's live numbers.
type counters struct {
	failed atomic.Int64
	cycles atomic.Int64
	up     atomic.Int64 // churn connections open
}

// Run carries out spec, reporting through ctl, and returns its findings.
func Run(ctx context.Context, spec Spec, ctl Control) (*Result, error) {
	switch spec.Mode {
	case ModeHold:
		return runHold(ctx, spec, ctl)
	case ModeChurn:
		return runChurn(ctx, spec, ctl)
	}
	return nil, errors.New("fleet: unknown mode " + spec.Mode)
}

// dialers returns, per WebSocket endpoint of spec.WS (a comma-separated
// list), one Dialer per source address.
func dialers(spec Spec) [][]*wsclient.Dialer {
	var out [][]*wsclient.Dialer
	for _, addr := range spec.Endpoints() {
		var ds []*wsclient.Dialer
		for _, s := range spec.Sources {
			ds = append(ds, &wsclient.Dialer{Addr: addr, Source: net.ParseIP(s), Timeout: spec.DialTimeout, Compression: spec.Compression})
		}
		if len(ds) == 0 {
			ds = append(ds, &wsclient.Dialer{Addr: addr, Timeout: spec.DialTimeout, Compression: spec.Compression})
		}
		out = append(out, ds)
	}
	return out
}

// dialerFor picks the dialer of run-wide connection g (its endpoint,
// round-robin over endpoints) for this process's i-th dial (its source
// address, round-robin over sources).
func dialerFor(ds [][]*wsclient.Dialer, g, i int) *wsclient.Dialer {
	e := ds[EndpointOf(g, len(ds))]
	return e[i%len(e)]
}

// statLoop sends a Stat every spec.StatEvery until stop is closed.
func statLoop(spec Spec, ctl Control, stop <-chan struct{}, read func() Stat) {
	every := spec.StatEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			ctl.Stat(read())
			return
		case <-t.C:
			ctl.Stat(read())
		}
	}
}

// pace waits until the i-th event of a schedule at rate per second.
func pace(ctx context.Context, start time.Time, i int, rate float64) {
	if rate <= 0 {
		return
	}
	d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second))))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func runHold(ctx context.Context, spec Spec, ctl Control) (*Result, error) {
	eng, err := wsclient.New(wsclient.Config{
		Topics: spec.Topics, Pollers: spec.Pollers, Workers: spec.Workers, TrackMessages: spec.TrackMessages,
	})
	if err != nil {
		return nil, err
	}
	defer eng.Stop()
	var cnt counters
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		statLoop(spec, ctl, stop, func() Stat {
			return Stat{Up: eng.Up(), Failed: cnt.failed.Load(), Deliveries: eng.Deliveries(), Lost: eng.Lost()}
		})
	}()
	defer func() { close(stop); wg.Wait() }()

	res := &Result{Procs: 1, Failures: stats.Causes{}}
	hs := stats.NewHist()
	readerTopics, err := dialAll(ctx, spec, eng, &cnt, res, hs)
	res.Handshake = hs.Export()
	res.Up = eng.Up()
	res.Failed = cnt.failed.Load()
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	ctl.Ready(Ready{Up: res.Up, Failed: res.Failed})
	fin, err := ctl.WaitFinish(ctx)
	if err != nil {
		return nil, err
	}
	var want int64
	res.TopicReaders = make([]int64, len(spec.Topics))
	for _, t := range readerTopics {
		res.TopicReaders[t]++
		if t < len(fin.LastSeq) {
			want += int64(fin.LastSeq[t])
		}
	}
	res.Expected = want
	res.Drained = drain(ctx, eng, want, spec.Drain, spec.Settle)
	if spec.CloseCode > 0 {
		eng.CloseAll(uint16(spec.CloseCode))
	}
	eng.Stop()
	er := eng.Result(fin.LastSeq)
	res.Counts, res.Msgs, res.Lost = er.Counts, er.Msgs, er.Lost
	res.Other, res.Unknown, res.Pings, res.Readers = er.Other, er.Unknown, er.Pings, er.Readers
	res.Latency = er.Latency.Export()
	res.LastRecvNs = er.LastRecvNs
	res.WireBytes, res.MessageBytes, res.Inflated = er.WireBytes, er.MessageBytes, er.Inflated
	return res, nil
}

// dialAll dials spec.Conns readers and spec.Slow non-readers, DialConcurrency
// at a time, paced at DialRate. It returns the topics of each reader that
// came up (one entry per reader and topic). A server that declines the
// compression asked for stops the dials and fails the run: what would be
// measured is not what was asked.
func dialAll(ctx context.Context, spec Spec, eng *wsclient.Engine, cnt *counters, res *Result, hs *stats.Hist) ([]int, error) {
	total := spec.Conns + spec.Slow
	ds := dialers(spec)
	conc := min(max(spec.DialConcurrency, 1), max(total, 1))
	var mu sync.Mutex
	var readerTopics []int
	var next atomic.Int64
	var declined atomic.Pointer[error]
	start := time.Now()
	res.ConnectStartNs = start.UnixNano()
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lh := stats.NewHist()
			fails := stats.Causes{}
			var tops []int
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil || declined.Load() != nil {
					break
				}
				pace(ctx, start, i, spec.DialRate)
				read, g := i < spec.Conns, spec.First+i
				if !read {
					g = spec.FirstSlow + i - spec.Conns
				}
				topics := spec.ReaderTopics(g)
				_, took, err := eng.Connect(ctx, dialerFor(ds, g, i), topics, read)
				if errors.Is(err, wsclient.ErrCompressionDeclined) || errors.Is(err, wsclient.ErrBadExtension) {
					declined.CompareAndSwap(nil, &err)
				}
				if err != nil {
					cnt.failed.Add(1)
					fails.Add(wsclient.Classify(err), 1)
					continue
				}
				lh.Record(took)
				if read {
					tops = append(tops, topics...)
				}
			}
			mu.Lock()
			hs.Merge(lh)
			res.Failures.Merge(fails)
			readerTopics = append(readerTopics, tops...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.ConnectEndNs = time.Now().UnixNano()
	if e := declined.Load(); e != nil {
		return nil, fmt.Errorf("fleet: compression was asked for: %w (is the server running with compression on?)", *e)
	}
	return readerTopics, nil
}

// drain waits until want deliveries have arrived, or settle passes without
// a new one, or limit passes. It reports whether want was reached.
func drain(ctx context.Context, eng *wsclient.Engine, want int64, limit, settle time.Duration) bool {
	if limit <= 0 {
		limit = 30 * time.Second
	}
	if settle <= 0 {
		settle = 2 * time.Second
	}
	deadline := time.Now().Add(limit)
	last, lastChange := eng.Deliveries(), time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		n := eng.Deliveries()
		if n >= want {
			return true
		}
		now := time.Now()
		if n != last {
			last, lastChange = n, now
		}
		if now.After(deadline) || now.Sub(lastChange) > settle {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func runChurn(ctx context.Context, spec Spec, ctl Control) (*Result, error) {
	var cnt counters
	stop := make(chan struct{})
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		statLoop(spec, ctl, stop, func() Stat {
			return Stat{Up: cnt.up.Load(), Failed: cnt.failed.Load(), Cycles: cnt.cycles.Load()}
		})
	}()
	defer func() { close(stop); swg.Wait() }()

	ctl.Ready(Ready{})
	if _, err := ctl.WaitFinish(ctx); err != nil {
		return nil, err
	}
	res := &Result{Procs: 1, Failures: stats.Causes{}, Lost: stats.Causes{}, Drained: true}
	hs, cyc := stats.NewHist(), stats.NewHist()
	ds := dialers(spec)
	var mu sync.Mutex
	start := time.Now()
	res.ConnectStartNs = start.UnixNano()
	end := start.Add(spec.ChurnDuration)
	sem := make(chan struct{}, max(spec.ChurnConcurrency, 1))
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		if spec.ChurnRate > 0 {
			pace(ctx, start, i, spec.ChurnRate)
		}
		if ctx.Err() != nil || !time.Now().Before(end) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			took, total, err := cycle(ctx, dialerFor(ds, spec.Index+i, i), spec, &cnt)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.CycleFailed++
				cnt.failed.Add(1)
				res.Failures.Add(wsclient.Classify(err), 1)
				return
			}
			hs.Record(took)
			cyc.Record(total)
			res.Cycles++
			cnt.cycles.Add(1)
		}()
	}
	wg.Wait()
	res.ConnectEndNs = time.Now().UnixNano()
	res.Failed = res.CycleFailed
	res.Handshake, res.Cycle = hs.Export(), cyc.Export()
	return res, ctx.Err()
}

// cycle is one churn cycle: dial and upgrade, stay open ChurnHold, then the
// closing handshake (close 1000 sent, the server's close awaited).
func cycle(ctx context.Context, d *wsclient.Dialer, spec Spec, cnt *counters) (handshake, total time.Duration, err error) {
	start := time.Now()
	target := "/ws"
	if len(spec.Topics) > 0 {
		target += "?topics=" + spec.Topics[0]
	}
	nc, rest, err := d.Dial(ctx, target)
	handshake = time.Since(start)
	if err != nil {
		return handshake, 0, err
	}
	cnt.up.Add(1)
	defer cnt.up.Add(-1)
	defer nc.Close()
	if spec.ChurnHold > 0 {
		t := time.NewTimer(spec.ChurnHold)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	nc.SetDeadline(deadline)
	if _, err := nc.Write(wsclient.AppendClientFrame(nil, ws.OpClose, []byte{0x03, 0xe8}, wsclient.MaskKey())); err != nil {
		return handshake, 0, err
	}
	p := wsclient.Parser{Deflate: spec.Compression}
	gotClose := errors.New("close")
	if len(rest) > 0 {
		if err := p.Feed(rest, func(op ws.OpCode, _ []byte) error {
			if op == ws.OpClose {
				return gotClose
			}
			return nil
		}); err == gotClose {
			return handshake, time.Since(start), nil
		}
	}
	buf := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		n, rerr := nc.Read(buf)
		if n > 0 {
			err := p.Feed(buf[:n], func(op ws.OpCode, _ []byte) error {
				if op == ws.OpClose {
					return gotClose
				}
				return nil
			})
			if err == gotClose {
				return handshake, time.Since(start), nil
			}
			if err != nil {
				return handshake, 0, err
			}
		}
		if rerr != nil {
			return handshake, 0, rerr
		}
	}
	return handshake, 0, errors.New("fleet: no close from server")
}
