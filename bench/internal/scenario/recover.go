package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wspush/wspush/bench/internal/fleet"
	"github.com/wspush/wspush/bench/internal/publish"
	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
	"github.com/wspush/wspush/bench/internal/stats"
	"github.com/wspush/wspush/bench/internal/wsclient"
)

// RecoverConfig drives the recover scenario: Conns clients subscribe to one
// topic with positions=1 and read Warmup messages live, all disconnect,
// Messages are published, and all resume at once with since; the server
// must keep at least Messages per topic (wspushd --history-size).
type RecoverConfig struct {
	Common
	// Messages is the number of publications missed while away.
	Messages int `json:"messages"`
	// Warmup is the number of publications read live first.
	Warmup int `json:"warmup"`
	// Size is the data object's size in bytes.
	Size int `json:"size"`
	// Publishers is the number of concurrent publishers.
	Publishers int `json:"publishers"`
}

// Register adds the recover flags to fs.
func (c *RecoverConfig) Register(fs *flag.FlagSet) {
	c.Common.Register(fs, 1000)
	fs.IntVar(&c.Messages, "m", 100, "messages published while the clients are away (the server needs --history-size >= m)")
	fs.IntVar(&c.Warmup, "warmup", 10, "messages read live before disconnecting")
	fs.IntVar(&c.Size, "s", 128, "bytes of each message's data object")
	fs.IntVar(&c.Publishers, "publishers", 4, "concurrent publishers")
}

func (c *RecoverConfig) validate() error {
	if err := c.Common.validate(); err != nil {
		return err
	}
	switch {
	case c.Messages < 1:
		return errors.New("-m must be >= 1")
	case c.Warmup < 0:
		return errors.New("--warmup must be >= 0")
	case c.Publishers < 1:
		return errors.New("--publishers must be >= 1")
	case c.Topics != 1:
		return errors.New("recover uses one topic: --topics must be 1")
	case c.Procs != 1:
		return errors.New("recover runs its clients in this process: --procs must be 1")
	case c.Compression:
		return errors.New("recover's clients do not negotiate compression: --compression is not supported")
	case c.Conns > fleet.PerProcessLimit():
		return fmt.Errorf("-n %d exceeds this process's open-file limit of %d", c.Conns, fleet.PerProcessLimit())
	}
	return nil
}

// Recover runs the recover scenario: the time until every resumed client
// has every missed message (per client and until the last one), exactly
// once and in order after recovered:true, and the server's CPU meanwhile.
func Recover(ctx context.Context, cfg RecoverConfig) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(&cfg.Common, "recover", cfg)
	err := recoverRun(ctx, r, cfg)
	return r.finish(err)
}

// recoverSetup is what the phases of a recover run share.
type recoverSetup struct {
	cfg     RecoverConfig
	topic   string
	clients []*rclient
	ws      []string
	sources []net.IP
}

// dialer is client i's dialer; shift moves it to a later endpoint (the
// resumed session goes to the next node, when there are several).
func (s *recoverSetup) dialer(i, shift int) *wsclient.Dialer {
	d := &wsclient.Dialer{Addr: s.ws[fleet.EndpointOf(i+shift, len(s.ws))], Timeout: s.cfg.DialTimeout}
	if len(s.sources) > 0 {
		d.Source = s.sources[i%len(s.sources)]
	}
	return d
}

func recoverRun(ctx context.Context, r *run, cfg RecoverConfig) error {
	s := &recoverSetup{cfg: cfg, topic: topicNames(1)[0], ws: cfg.wsList()}
	base := net.ParseIP(cfg.SourceBase)
	if base == nil {
		return fmt.Errorf("--source-base %q is not an IP address", cfg.SourceBase)
	}
	for a := 0; a < max(cfg.AddrsPerProc, 1); a++ {
		ip, err := fleet.SourceIP(base, a)
		if err != nil {
			return err
		}
		s.sources = append(s.sources, ip)
	}
	idle := r.snap(ctx, "idle")
	live, err := s.goLive(ctx, r)
	if err != nil {
		return err
	}
	pub := publish.NewClient(cfg.API, cfg.Size, cfg.Publishers)
	defer pub.Close()
	if err := s.warmUp(ctx, r, pub, live); err != nil {
		return err
	}
	waitConnections(ctx, cfg.apiList(), idle, 10*time.Second)
	pres, err := pub.Run(ctx, publish.Plan{Topics: []string{s.topic}, Count: cfg.Messages, Publishers: cfg.Publishers}, &r.pub)
	if err != nil {
		return err
	}
	r.rep.Publish = publishSummary(pres)
	if pres.Sent != int64(cfg.Messages) {
		return fmt.Errorf("only %d of %d publishes succeeded (%v)", pres.Sent, cfg.Messages, pres.Errors)
	}
	return s.catchUp(ctx, r, pres.LastSeq[0])
}

// liveRun is the live phase's bookkeeping.
type liveRun struct {
	wg         sync.WaitGroup // the live sessions' goroutines
	up, failed atomic.Int64
	lost       atomic.Int64 // live sessions that ended on their own
	startNs    int64
	endNs      int64
	hs         *stats.Hist
	hsMu       sync.Mutex
}

// goLive connects every client with positions=1 (DialConcurrency at a
// time) and returns once each has its position or failed.
func (s *recoverSetup) goLive(ctx context.Context, r *run) (*liveRun, error) {
	cfg := s.cfg
	lr := &liveRun{hs: stats.NewHist(), startNs: time.Now().UnixNano()}
	s.clients = make([]*rclient, cfg.Conns)
	sem := make(chan struct{}, max(cfg.DialConcurrency, 1))
	var ready sync.WaitGroup
	target := "/ws?topics=" + s.topic + "&positions=1"
	deadline := time.Now().Add(cfg.Timeout)
	for i := range s.clients {
		c := &rclient{}
		s.clients[i] = c
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			s.closeAll(lr)
			return nil, ctx.Err()
		}
		lr.wg.Add(1)
		ready.Add(1)
		go func() {
			defer lr.wg.Done()
			var once sync.Once
			t0 := time.Now()
			done := func(err error) {
				once.Do(func() {
					<-sem
					if err != nil {
						lr.failed.Add(1)
					} else {
						lr.up.Add(1)
					}
					ready.Done()
				})
			}
			err := c.session(ctx, s.dialer(i, 0), target, deadline, func() {
				lr.hsMu.Lock()
				lr.hs.Record(time.Since(t0))
				lr.hsMu.Unlock()
			}, c.liveMsg(s.topic, done))
			done(err)
			if c.epoch != "" && !c.closedOnPurpose() {
				lr.lost.Add(1)
			}
		}()
	}
	if !waitGroup(ctx, &ready, cfg.ConnectTimeout) {
		s.closeAll(lr)
		return nil, errors.New("connect phase: not every client had its position within --connect-timeout")
	}
	lr.endNs = time.Now().UnixNano()
	r.rep.Clients = &report.Clients{Procs: 1, Target: int64(cfg.Conns), Up: lr.up.Load(), Failed: lr.failed.Load(), Failures: stats.Causes{}, Lost: stats.Causes{}}
	if secs := float64(lr.endNs-lr.startNs) / 1e9; secs > 0 {
		r.rep.Clients.ConnectSeconds, r.rep.Clients.ConnectsPerSec = secs, float64(lr.up.Load())/secs
	}
	h := lr.hs.Summarize()
	r.rep.Handshake = &h
	return lr, nil
}

// closeAll ends every live session and waits for their goroutines.
func (s *recoverSetup) closeAll(lr *liveRun) {
	for _, c := range s.clients {
		if c != nil {
			c.close()
		}
	}
	lr.wg.Wait()
}

// warmUp publishes the warm-up messages, waits until every live client read
// them, then disconnects every client.
func (s *recoverSetup) warmUp(ctx context.Context, r *run, pub *publish.Client, lr *liveRun) error {
	want := uint64(0)
	if s.cfg.Warmup > 0 {
		pres, err := pub.Run(ctx, publish.Plan{Topics: []string{s.topic}, Count: s.cfg.Warmup, Publishers: 1}, &r.pub)
		if err != nil {
			return err
		}
		want = pres.LastSeq[0]
	}
	deadline := time.Now().Add(s.cfg.Drain)
	for ctx.Err() == nil && time.Now().Before(deadline) && !s.allAt(want) {
		SleepCtx(ctx, 5*time.Millisecond)
	}
	if !s.allAt(want) {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("not every client read the warm-up up to seq %d before --drain", want))
	}
	s.closeAll(lr)
	var off int64
	for _, c := range s.clients {
		off += c.live.Load()
	}
	if off > 0 || lr.lost.Load() > 0 {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("live phase: %d deliveries out of line, %d sessions ended on their own", off, lr.lost.Load()))
	}
	return ctx.Err()
}

// allAt tells whether every client with a position read up to seq.
func (s *recoverSetup) allAt(seq uint64) bool {
	for _, c := range s.clients {
		if c.epoch != "" && c.last.Load() < seq {
			return false
		}
	}
	return true
}

// catchUp reconnects every client that had a position, all at once, with
// since=topic:epoch:last, and waits (bounded by --drain) until each has
// every message up to lastSeq; then it judges and reports.
func (s *recoverSetup) catchUp(ctx context.Context, r *run, lastSeq uint64) error {
	cfg := s.cfg
	var resumers []*rclient
	var done, closed sync.WaitGroup
	gate, release := make(chan struct{}), make(chan struct{})
	var start time.Time
	for i, c := range s.clients {
		if c.epoch == "" {
			continue
		}
		resumers = append(resumers, c)
		c.reopen()
		from := c.last.Load()
		c.cu = newCatchup(from, cfg.Messages)
		target := "/ws?topics=" + s.topic + "&since=" + s.topic + ":" + c.epoch + ":" + strconv.FormatUint(from, 10)
		done.Add(1)
		closed.Add(1)
		go func() {
			defer closed.Done()
			<-gate
			err := c.session(ctx, s.dialer(i, 1), target, start.Add(cfg.Drain), func() { c.resumed = true }, c.resumeMsg(s.topic, start))
			if !errors.Is(err, errStop) {
				c.err = err
			}
			done.Done()
			<-release
			c.close()
		}()
	}
	before := r.snap(ctx, "before catch-up")
	start = time.Now()
	close(gate)
	done.Wait()
	after := r.snap(ctx, "after catch-up")
	close(release)
	closed.Wait()
	r.rep.Recover = recoverFigures(resumers, cfg.Messages, before, after)
	if len(resumers) > 0 {
		r.rep.Recover.FromSeq = resumers[0].cu.from
		if want := resumers[0].cu.from + uint64(cfg.Messages); want != lastSeq {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("the last seq published is %d, not %d: someone else publishes to the topic", lastSeq, want))
		}
	}
	r.rep.Checks = recoverVerdict(resumers, cfg.Conns, cfg.Messages)
	return nil
}

// recoverFigures computes the catch-up times and the server's CPU.
func recoverFigures(cs []*rclient, m int, before, after serverstat.Snapshot) *report.Recover {
	rc := &report.Recover{Clients: int64(len(cs)), Messages: m, ServerCPUSeconds: -1}
	h := stats.NewHist()
	var last time.Duration
	for _, c := range cs {
		if c.recovered {
			rc.Recovered++
		}
		if c.took > 0 {
			rc.CaughtUp++
			h.Record(c.took)
			last = max(last, c.took)
		}
	}
	rc.CatchUp, rc.LastMs = h.Summarize(), float64(last)/1e6
	if before.Proc != nil && after.Proc != nil {
		rc.ServerCPUSeconds = after.Proc.CPU - before.Proc.CPU
	}
	return rc
}

// waitConnections waits (at most limit) until the servers' summed
// wspush_connections is back to idle's; without the metric it returns.
func waitConnections(ctx context.Context, apis []string, idle serverstat.Snapshot, limit time.Duration) {
	want, ok := idle.Metric(serverstat.Connections)
	if !ok {
		return
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if v, ok := serverstat.TakeAll(ctx, nil, apis).Metric(serverstat.Connections); !ok || v <= want {
			return
		}
		SleepCtx(ctx, 20*time.Millisecond)
	}
}

// waitGroup waits for wg, at most limit; it reports whether wg finished.
func waitGroup(ctx context.Context, wg *sync.WaitGroup, limit time.Duration) bool {
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
