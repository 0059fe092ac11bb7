// Package fleet owns the client side of a run spread over processes: the
// Spec each client process gets (its share of connections and its source
// addresses), the runner that carries a Spec out with a wsclient.Engine, the
// barrier protocol between the parent and its children (READY, FINISH,
// RESULT lines), the children's re-exec and the exact merge of their
// results. With one process the same runner runs in-process.
package fleet

import (
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/bench/internal/check"
	"github.com/wspush/wspush/bench/internal/stats"
)

// Modes of a Spec.
const (
	// ModeHold dials the connections, reports READY, holds them (reading
	// deliveries) until FINISH, waits for the expected deliveries, reports.
	ModeHold = "hold"
	// ModeChurn reports READY at once, and on FINISH runs connect/close
	// cycles for ChurnDuration, then reports.
	ModeChurn = "churn"
)

// Spec is one client process's share of a run.
type Spec struct {
	// Mode is ModeHold or ModeChurn.
	Mode string `json:"mode"`
	// Index is the process's number, 0-based.
	Index int `json:"index"`
	// WS is the server's WebSocket address, or a comma-separated list of
	// them (the nodes of a cluster): run-wide connection g dials endpoint
	// g mod len (EndpointOf), so the spread is even over every process.
	WS string `json:"ws"`
	// Topics are every topic of the run; connections refer to them by index.
	Topics []string `json:"topics"`
	// Sources are the local IPs to dial from, used round-robin.
	Sources []string `json:"sources"`
	// Conns is the number of reading connections.
	Conns int `json:"conns"`
	// First is the run-wide index of the first reading connection; reader
	// g subscribes to Topics[g % len(Topics)].
	First int `json:"first"`
	// Shared makes every connection subscribe to two topics: Topics[0],
	// shared by all, and its group Topics[1 + g % (len(Topics)-1)]
	// (ReaderTopics).
	Shared bool `json:"shared"`
	// CloseCode, when set, closes every connection with a close frame of
	// this code once the deliveries are in (0: closed without one).
	CloseCode int `json:"close_code"`
	// Slow is the number of connections that never read.
	Slow int `json:"slow"`
	// FirstSlow is the run-wide index of the first slow connection.
	FirstSlow int `json:"first_slow"`
	// DialRate is connections per second for this process (0: no pacing).
	DialRate float64 `json:"dial_rate"`
	// DialConcurrency is the number of dials in flight at once.
	DialConcurrency int `json:"dial_concurrency"`
	// DialTimeout bounds one dial plus handshake.
	DialTimeout time.Duration `json:"dial_timeout"`
	// Compression makes every connection offer permessage-deflate (and
	// the run fail if the server declines it).
	Compression bool `json:"compression,omitempty"`
	// Pollers and Workers size the engine (0: its defaults).
	Pollers int `json:"pollers"`
	// Workers is the number of read workers.
	Workers int `json:"workers"`
	// TrackMessages is the per-topic size of the per-message table.
	TrackMessages int `json:"track_messages"`
	// StatEvery is the interval of STAT lines.
	StatEvery time.Duration `json:"stat_every"`
	// Drain bounds the wait for the expected deliveries after FINISH.
	Drain time.Duration `json:"drain"`
	// Settle ends that wait early after this long without a new delivery.
	Settle time.Duration `json:"settle"`
	// ChurnDuration, ChurnRate (cycles/s for this process), ChurnHold (time
	// a churn connection stays open) and ChurnConcurrency drive ModeChurn.
	ChurnDuration time.Duration `json:"churn_duration"`
	// ChurnRate is cycles per second for this process.
	ChurnRate float64 `json:"churn_rate"`
	// ChurnHold is how long each churn connection stays open.
	ChurnHold time.Duration `json:"churn_hold"`
	// ChurnConcurrency bounds the cycles in flight.
	ChurnConcurrency int `json:"churn_concurrency"`
	// MaxLife ends a child process whatever happens.
	MaxLife time.Duration `json:"max_life"`
}

// Endpoints returns the WebSocket addresses of s.WS (at least one entry).
func (s Spec) Endpoints() []string {
	var out []string
	for a := range strings.SplitSeq(s.WS, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// EndpointOf is the endpoint (0..n-1) run-wide connection g dials:
// round-robin over the n endpoints. Since each process's connections are a
// contiguous range of g, the spread over the endpoints is even whatever
// the number of processes.
func EndpointOf(g, n int) int {
	if n <= 1 || g < 0 {
		return 0
	}
	return g % n
}

// ReaderTopics is the topics (indices into Topics) run-wide connection g
// subscribes to: Topics[g mod len], or with Shared Topics[0] and its group
// Topics[1 + g mod (len-1)]. None without topics.
func (s Spec) ReaderTopics(g int) []int {
	n := len(s.Topics)
	switch {
	case n == 0:
		return nil
	case s.Shared && n > 1:
		return []int{0, 1 + g%(n-1)}
	}
	return []int{g % n}
}

// Stat is a client process's live counters.
type Stat struct {
	// Up is connections open now; Failed dials that failed so far.
	Up int64 `json:"up"`
	// Failed counts failed dials and upgrades.
	Failed int64 `json:"failed"`
	// Deliveries counts deliveries received.
	Deliveries int64 `json:"deliveries"`
	// Lost counts connections that ended on their own.
	Lost int64 `json:"lost"`
	// Cycles counts finished churn cycles.
	Cycles int64 `json:"cycles"`
}

// Add sums o into s.
func (s *Stat) Add(o Stat) {
	s.Up += o.Up
	s.Failed += o.Failed
	s.Deliveries += o.Deliveries
	s.Lost += o.Lost
	s.Cycles += o.Cycles
}

// Ready is what a process reports at the barrier.
type Ready struct {
	// Up is connections up; Failed dials that failed.
	Up int64 `json:"up"`
	// Failed counts failed dials and upgrades.
	Failed int64 `json:"failed"`
}

// Finish is the parent's signal to finish: the last seq published per topic.
type Finish struct {
	// LastSeq is indexed like Spec.Topics.
	LastSeq []uint64 `json:"last_seq"`
}

// Result is a client process's findings. Histograms travel as snapshots.
type Result struct {
	// Procs is the number of processes merged into this result.
	Procs int `json:"procs"`
	// Up counts connections that were up at the barrier.
	Up int64 `json:"up"`
	// Failed counts failed dials and upgrades; Failures says why.
	Failed int64 `json:"failed"`
	// Failures counts failed dials and upgrades by cause.
	Failures stats.Causes `json:"failures"`
	// Readers counts reading connections that were up.
	Readers int64 `json:"readers"`
	// Lost counts connections that ended on their own, by cause.
	Lost stats.Causes `json:"lost"`
	// Counts are the seq checks.
	Counts check.Counts `json:"counts"`
	// Msgs is the per-message table.
	Msgs check.Msgs `json:"msgs"`
	// Other, Unknown and Pings are the engine's counts of non-deliveries,
	// deliveries on unexpected topics and server pings.
	Other int64 `json:"other"`
	// Unknown counts deliveries on a topic the connection did not ask for.
	Unknown int64 `json:"unknown"`
	// Pings counts pings from the server.
	Pings int64 `json:"pings"`
	// ConnectStartNs and ConnectEndNs frame the dial phase (Unix ns).
	ConnectStartNs int64 `json:"connect_start_ns"`
	// ConnectEndNs is when the last dial finished.
	ConnectEndNs int64 `json:"connect_end_ns"`
	// Drained tells whether every expected delivery arrived before the
	// drain wait ended (false: Settle or Drain cut it short).
	Drained bool `json:"drained"`
	// Cycles and CycleFailed count churn cycles.
	Cycles int64 `json:"cycles"`
	// CycleFailed counts churn cycles that failed (counted in Failures too).
	CycleFailed int64 `json:"cycle_failed"`
	// Expected is the deliveries this process's readers should get: the
	// sum over readers of the last seq of their topic.
	Expected int64 `json:"expected"`
	// TopicReaders counts reading connections per topic.
	TopicReaders []int64 `json:"topic_readers"`
	// LastRecvNs is when the latest delivery arrived (Unix ns, 0: none).
	LastRecvNs int64 `json:"last_recv_ns"`
	// WireBytes counts what the reading connections read from their
	// sockets after the 101s; MessageBytes their data messages' payloads
	// (inflated); Inflated the messages that came compressed.
	WireBytes int64 `json:"wire_bytes"`
	// MessageBytes counts data message payload bytes, after inflating.
	MessageBytes int64 `json:"message_bytes"`
	// Inflated counts compressed messages.
	Inflated int64 `json:"inflated"`
	// Handshake, Latency and Cycle are the histograms as snapshots.
	Handshake stats.Snap `json:"handshake"`
	// Latency is the delivery latency histogram.
	Latency stats.Snap `json:"latency"`
	// Cycle is the churn cycle time histogram.
	Cycle stats.Snap `json:"cycle"`
}

// Merged is the merge of many Results, with live histograms.
type Merged struct {
	Result
	// HandshakeH, LatencyH and CycleH are the merged histograms.
	HandshakeH, LatencyH, CycleH *stats.Hist
}

// Merge folds results into one; histograms are merged exactly.
func Merge(rs []*Result) (*Merged, error) {
	m := &Merged{HandshakeH: stats.NewHist(), LatencyH: stats.NewHist(), CycleH: stats.NewHist()}
	m.Failures, m.Lost = stats.Causes{}, stats.Causes{}
	m.Drained = true
	for _, r := range rs {
		m.Procs += max(r.Procs, 1)
		m.Up += r.Up
		m.Failed += r.Failed
		m.Failures.Merge(r.Failures)
		m.Readers += r.Readers
		m.Lost.Merge(r.Lost)
		m.Counts.Merge(r.Counts)
		m.Msgs.Merge(r.Msgs)
		m.Other += r.Other
		m.Unknown += r.Unknown
		m.Pings += r.Pings
		if r.ConnectStartNs > 0 && (m.ConnectStartNs == 0 || r.ConnectStartNs < m.ConnectStartNs) {
			m.ConnectStartNs = r.ConnectStartNs
		}
		m.ConnectEndNs = max(m.ConnectEndNs, r.ConnectEndNs)
		m.Drained = m.Drained && r.Drained
		m.Expected += r.Expected
		for len(m.TopicReaders) < len(r.TopicReaders) {
			m.TopicReaders = append(m.TopicReaders, 0)
		}
		for i, n := range r.TopicReaders {
			m.TopicReaders[i] += n
		}
		m.LastRecvNs = max(m.LastRecvNs, r.LastRecvNs)
		m.WireBytes += r.WireBytes
		m.MessageBytes += r.MessageBytes
		m.Inflated += r.Inflated
		m.Cycles += r.Cycles
		m.CycleFailed += r.CycleFailed
		for _, p := range []struct {
			dst *stats.Hist
			s   stats.Snap
		}{{m.HandshakeH, r.Handshake}, {m.LatencyH, r.Latency}, {m.CycleH, r.Cycle}} {
			h, err := stats.ImportHist(p.s)
			if err != nil {
				return nil, err
			}
			p.dst.Merge(h)
		}
	}
	m.Handshake, m.Latency, m.Cycle = m.HandshakeH.Export(), m.LatencyH.Export(), m.CycleH.Export()
	return m, nil
}

// Shares splits total into n parts that differ by at most one, larger first.
func Shares(total, n int) []int {
	if n < 1 {
		n = 1
	}
	out := make([]int, n)
	for i := range out {
		out[i] = total / n
		if i < total%n {
			out[i]++
		}
	}
	return out
}

// SourceIP returns base + i, which must stay inside 127.0.0.0/8 and avoid
// its network and broadcast addresses.
func SourceIP(base net.IP, i int) (net.IP, error) {
	b4 := base.To4()
	if b4 == nil || b4[0] != 127 {
		return nil, fmt.Errorf("fleet: source base %v is not in 127.0.0.0/8", base)
	}
	v := int(b4[1])<<16 | int(b4[2])<<8 | int(b4[3])
	v += i
	if v <= 0 || v >= 1<<24-1 {
		return nil, fmt.Errorf("fleet: source address %d past %v leaves 127.0.0.0/8", i, base)
	}
	return net.IPv4(127, byte(v>>16), byte(v>>8), byte(v)).To4(), nil
}

// PerProcessLimit is how many connections one process may hold: its
// open-file hard limit less headroom for pipes, pollers and the API client.
func PerProcessLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Max > 1<<30 {
		return 1 << 20
	}
	return int(rl.Max) - 100
}

// Split makes one Spec per process from base (whose Conns, Slow, DialRate,
// ChurnRate and ChurnConcurrency are run-wide totals): process i gets an
// equal share and the source addresses srcBase + i*addrs .. + addrs-1.
func Split(base Spec, procs, addrs int, srcBase net.IP) ([]Spec, error) {
	procs, addrs = max(procs, 1), max(addrs, 1)
	conns, slow := Shares(base.Conns, procs), Shares(base.Slow, procs)
	limit := PerProcessLimit()
	var specs []Spec
	first, firstSlow := 0, 0
	for i := 0; i < procs; i++ {
		s := base
		s.Topics = append([]string(nil), base.Topics...)
		s.Index = i
		s.Conns, s.First = conns[i], first
		s.Slow, s.FirstSlow = slow[i], firstSlow
		first += conns[i]
		firstSlow += slow[i]
		if n := s.Conns + s.Slow; n > limit {
			return nil, fmt.Errorf("fleet: %d connections in one process exceed its limit of %d open files: use more --procs", n, limit)
		}
		s.DialRate = base.DialRate / float64(procs)
		s.ChurnRate = base.ChurnRate / float64(procs)
		s.ChurnConcurrency = max(1, base.ChurnConcurrency/procs)
		s.DialConcurrency = max(1, base.DialConcurrency/procs)
		s.Sources = nil
		for a := 0; a < addrs; a++ {
			ip, err := SourceIP(srcBase, i*addrs+a)
			if err != nil {
				return nil, err
			}
			s.Sources = append(s.Sources, ip.String())
		}
		specs = append(specs, s)
	}
	return specs, nil
}
