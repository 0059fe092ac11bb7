package scale

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/wspush/wspush/bench/internal/serverstat"
)

// Kernel is the machine-wide kernel memory that grows with connections.
type Kernel struct {
	// SlabB and SUnreclaimB are Slab and SUnreclaim of /proc/meminfo, bytes
	// (socket structs, dentries and inodes of the socket files, ...).
	SlabB int64 `json:"slab_bytes"`
	// SUnreclaimB is the part of Slab that cannot be reclaimed.
	SUnreclaimB int64 `json:"sunreclaim_bytes"`
	// TCPMemB is the TCP "mem" of /proc/net/sockstat (pages) in bytes:
	// buffer memory charged to TCP sockets.
	TCPMemB int64 `json:"tcp_mem_bytes"`
	// TCPInUse is the TCP sockets in use.
	TCPInUse int64 `json:"tcp_inuse"`
}

// readKernel reads /proc/meminfo and /proc/net/sockstat.
func readKernel() (Kernel, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return Kernel{}, err
	}
	mi, err := fs.Meminfo()
	if err != nil {
		return Kernel{}, err
	}
	var k Kernel
	if mi.SlabBytes != nil {
		k.SlabB = int64(*mi.SlabBytes)
	}
	if mi.SUnreclaimBytes != nil {
		k.SUnreclaimB = int64(*mi.SUnreclaimBytes)
	}
	ss, err := fs.NetSockstat()
	if err != nil {
		return Kernel{}, err
	}
	for _, p := range ss.Protocols {
		if p.Protocol != "TCP" {
			continue
		}
		k.TCPInUse = int64(p.InUse)
		if p.Mem != nil {
			k.TCPMemB = int64(*p.Mem) * int64(os.Getpagesize())
		}
	}
	return k, nil
}

// TCPCounters are the kernel's TCP event counters (/proc/net/snmp and
// /proc/net/netstat, this network namespace) that tell a loaded run's
// troubles: retransmissions, keepalive probes, aborts, memory pressure.
type TCPCounters struct {
	// RetransSegs is Tcp RetransSegs: segments sent again.
	RetransSegs int64 `json:"retrans_segs"`
	// LossProbes is TcpExt TCPLossProbes: tail loss probes (an ACK late).
	LossProbes int64 `json:"loss_probes"`
	// KeepAliveProbes is TcpExt TCPKeepAlive: TCP keepalive probes sent.
	KeepAliveProbes int64 `json:"keepalive_probes"`
	// AbortOnTimeout is TcpExt TCPAbortOnTimeout: connections the kernel
	// ended (ETIMEDOUT) after unanswered retransmissions or probes.
	AbortOnTimeout int64 `json:"abort_on_timeout"`
	// MemoryPressures is TcpExt TCPMemoryPressures: times TCP entered
	// memory pressure (tcp_mem's middle value crossed).
	MemoryPressures int64 `json:"memory_pressures"`
	// ListenOverflows is TcpExt ListenOverflows: connections dropped on a
	// full accept queue.
	ListenOverflows int64 `json:"listen_overflows"`
}

// readTCP reads the counters through procfs (this process's namespace).
func readTCP() (TCPCounters, error) {
	p, err := procfs.Self()
	if err != nil {
		return TCPCounters{}, err
	}
	sn, err := p.Snmp()
	if err != nil {
		return TCPCounters{}, err
	}
	ns, err := p.Netstat()
	if err != nil {
		return TCPCounters{}, err
	}
	v := func(f *float64) int64 {
		if f == nil {
			return 0
		}
		return int64(*f)
	}
	return TCPCounters{
		RetransSegs: v(sn.Tcp.RetransSegs), LossProbes: v(ns.TcpExt.TCPLossProbes),
		KeepAliveProbes: v(ns.TcpExt.TCPKeepAlive), AbortOnTimeout: v(ns.TcpExt.TCPAbortOnTimeout),
		MemoryPressures: v(ns.TcpExt.TCPMemoryPressures), ListenOverflows: v(ns.TcpExt.ListenOverflows),
	}, nil
}

// since is c less an earlier reading.
func (c TCPCounters) since(b TCPCounters) TCPCounters {
	return TCPCounters{
		RetransSegs: c.RetransSegs - b.RetransSegs, LossProbes: c.LossProbes - b.LossProbes,
		KeepAliveProbes: c.KeepAliveProbes - b.KeepAliveProbes, AbortOnTimeout: c.AbortOnTimeout - b.AbortOnTimeout,
		MemoryPressures: c.MemoryPressures - b.MemoryPressures, ListenOverflows: c.ListenOverflows - b.ListenOverflows,
	}
}

// NodeStat is one node's process and runtime numbers.
type NodeStat struct {
	// Name is the node's name ("total" for the sum).
	Name string `json:"name"`
	// RSSB and RSSAnonB are its resident and private anonymous memory.
	RSSB int64 `json:"rss_bytes"`
	// RSSAnonB is the anonymous part of RSSB (heap, stacks).
	RSSAnonB int64 `json:"rss_anon_bytes"`
	// PSSB is its proportional set size: the binary's pages, which every
	// node maps, counted once over all nodes (serverstat.Proc.PSS).
	PSSB int64 `json:"pss_bytes"`
	// HeapInuseB is go_memstats_heap_inuse_bytes.
	HeapInuseB int64 `json:"heap_inuse_bytes"`
	// Goroutines is go_goroutines.
	Goroutines int64 `json:"goroutines"`
	// FDs is its open descriptors.
	FDs int64 `json:"fds"`
	// Conns is wspush_connections.
	Conns int64 `json:"conns"`
	// CPU is its user+system CPU time so far, seconds.
	CPU float64 `json:"cpu_s"`
	// Pings and Pongs are wspush_pings_sent_total and
	// wspush_pongs_received_total so far.
	Pings int64 `json:"pings"`
	// Pongs is wspush_pongs_received_total.
	Pongs int64 `json:"pongs"`
	// Errors says what could not be read.
	Errors []string `json:"errors,omitempty"`
}

// add sums o's numbers into s.
func (s *NodeStat) add(o NodeStat) {
	s.RSSB += o.RSSB
	s.RSSAnonB += o.RSSAnonB
	s.PSSB += o.PSSB
	s.HeapInuseB += o.HeapInuseB
	s.Goroutines += o.Goroutines
	s.FDs += o.FDs
	s.Conns += o.Conns
	s.CPU += o.CPU
	s.Pings += o.Pings
	s.Pongs += o.Pongs
	s.Errors = append(s.Errors, o.Errors...)
}

// Sample is one measurement of every node and of the kernel.
type Sample struct {
	// At is when it was taken.
	At time.Time `json:"at"`
	// Nodes are per node, in node order; Total their sum.
	Nodes []NodeStat `json:"nodes"`
	// Total is the sum over the nodes.
	Total NodeStat `json:"total"`
	// Kernel is the machine's kernel memory.
	Kernel Kernel `json:"kernel"`
	// KernelErr says why Kernel is empty.
	KernelErr string `json:"kernel_error,omitempty"`
	// BusyCPU is the machine's non-idle CPU time since boot, seconds
	// (every process and the kernel; /proc/stat).
	BusyCPU float64 `json:"busy_cpu_s"`
	// OtherCPU is the CPU time of the processes that are not the run's
	// (by name: not wspushd, bench or redis-server), seconds: kernel
	// threads, and whatever else shares the machine.
	OtherCPU float64 `json:"other_cpu_s"`
}

// runProcs are the names (comm) of the run's own processes.
var runProcs = map[string]bool{"wspushd": true, "bench": true, "redis-server": true}

// otherCPU sums the CPU time of every process that is not the run's.
func otherCPU() (float64, error) {
	procs, err := procfs.AllProcs()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil || runProcs[st.Comm] {
			continue // gone meanwhile, or ours
		}
		sum += st.CPUTime()
	}
	return sum, nil
}

// measure reads every node's /proc and /metrics, and the kernel's numbers.
func measure(ctx context.Context, nodes []*Node) Sample {
	s := Sample{At: time.Now(), Total: NodeStat{Name: "total"}}
	for _, n := range nodes {
		snap := serverstat.Take(ctx, n.PID, n.API)
		ns := NodeStat{Name: n.Name, Errors: snap.Errors}
		if p := snap.Proc; p != nil {
			ns.RSSB, ns.RSSAnonB, ns.PSSB, ns.FDs, ns.CPU = p.RSS, p.RSSAnon, p.PSS, p.FDs, p.CPU
		}
		for name, dst := range map[string]*int64{
			serverstat.HeapInuse: &ns.HeapInuseB, serverstat.Goroutines: &ns.Goroutines, serverstat.Connections: &ns.Conns,
			serverstat.PingsSent: &ns.Pings, serverstat.PongsReceived: &ns.Pongs,
		} {
			if v, ok := snap.Metric(name); ok {
				*dst = int64(v)
			}
		}
		s.Nodes = append(s.Nodes, ns)
		s.Total.add(ns)
	}
	k, err := readKernel()
	if err != nil {
		s.KernelErr = err.Error()
	}
	s.Kernel = k
	busy, err1 := busyCPU()
	other, err2 := otherCPU()
	s.BusyCPU, s.OtherCPU = busy, other
	if err := errors.Join(err1, err2); err != nil {
		s.KernelErr = strings.TrimPrefix(s.KernelErr+"; "+err.Error(), "; ")
	}
	return s
}

// busyCPU is the machine's CPU time not idle since boot, in seconds.
func busyCPU() (float64, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, err
	}
	c := st.CPUTotal
	return c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal, nil
}

// Load is what the held connections cost in CPU over a stretch of time
// with nothing published: their keepalives.
type Load struct {
	// Seconds is the stretch measured.
	Seconds float64 `json:"seconds"`
	// PingsPerSec and PongsPerSec are the nodes' keepalive rates.
	PingsPerSec float64 `json:"pings_per_sec"`
	// PongsPerSec is the pongs the nodes read per second.
	PongsPerSec float64 `json:"pongs_per_sec"`
	// BusyCores is the machine's busy CPU over the stretch, in cores
	// (nodes, clients, Redis and the kernel's work for all of them).
	BusyCores float64 `json:"busy_cores"`
	// NodeCores is the nodes' own user+system CPU, in cores.
	NodeCores float64 `json:"node_cores"`
	// OtherCores is the CPU of processes not in the run (Sample.OtherCPU),
	// in cores; BoxUsPerPing leaves it out.
	OtherCores float64 `json:"other_cores"`
	// NodeUsPerPing is the nodes' CPU per ping sent, pong read included.
	NodeUsPerPing float64 `json:"node_us_per_ping"`
	// BoxUsPerPing is the machine's busy CPU per ping, less the processes
	// not in the run: both ends and the kernel's work for them.
	BoxUsPerPing float64 `json:"box_us_per_ping"`
}

// loadOf is the CPU load from a to b.
func loadOf(a, b Sample) Load {
	l := Load{Seconds: b.At.Sub(a.At).Seconds()}
	if l.Seconds <= 0 {
		return l
	}
	pings := float64(b.Total.Pings - a.Total.Pings)
	l.PingsPerSec = pings / l.Seconds
	l.PongsPerSec = float64(b.Total.Pongs-a.Total.Pongs) / l.Seconds
	l.BusyCores = (b.BusyCPU - a.BusyCPU) / l.Seconds
	l.NodeCores = (b.Total.CPU - a.Total.CPU) / l.Seconds
	l.OtherCores = (b.OtherCPU - a.OtherCPU) / l.Seconds
	if pings > 0 {
		l.NodeUsPerPing = (b.Total.CPU - a.Total.CPU) / pings * 1e6
		l.BoxUsPerPing = (b.BusyCPU - a.BusyCPU - (b.OtherCPU - a.OtherCPU)) / pings * 1e6
	}
	return l
}

// Cost is what the connections cost, from two samples around them.
type Cost struct {
	// Conns is the connections the difference is divided by.
	Conns int64 `json:"conns"`
	// UserRSSPerConn is the nodes' RSS growth per connection, bytes.
	UserRSSPerConn float64 `json:"user_rss_per_conn_bytes"`
	// UserRSSAllInPerConn is the nodes' whole RSS after the hold per
	// connection: baselines included, each node's mapped binary counted
	// in full although the nodes share its pages.
	UserRSSAllInPerConn float64 `json:"user_rss_all_in_per_conn_bytes"`
	// UserPSSAllInPerConn is the nodes' whole PSS after the hold per
	// connection: baselines included, shared pages counted once. It is
	// the memory the machine spends on the nodes.
	UserPSSAllInPerConn float64 `json:"user_pss_all_in_per_conn_bytes"`
	// UserAnonPerConn is the nodes' RssAnon growth per connection.
	UserAnonPerConn float64 `json:"user_rss_anon_per_conn_bytes"`
	// HeapPerConn is the nodes' heap-in-use growth per connection.
	HeapPerConn float64 `json:"heap_inuse_per_conn_bytes"`
	// KernelPerConn is Slab plus TCP memory growth per connection: both
	// ends of each loopback connection (client and server socket).
	KernelPerConn float64 `json:"kernel_per_conn_bytes"`
	// SlabPerConn and TCPMemPerConn are its two parts.
	SlabPerConn float64 `json:"slab_per_conn_bytes"`
	// TCPMemPerConn is the sockstat TCP memory part.
	TCPMemPerConn float64 `json:"tcp_mem_per_conn_bytes"`
	// GoroutinesPerConn is the nodes' goroutine growth per connection.
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
}

// costOf divides the growth from before to after by conns.
func costOf(before, after Sample, conns int64) Cost {
	c := Cost{Conns: conns}
	if conns <= 0 {
		return c
	}
	per := func(a, b int64) float64 { return float64(a-b) / float64(conns) }
	c.UserRSSPerConn = per(after.Total.RSSB, before.Total.RSSB)
	c.UserRSSAllInPerConn = per(after.Total.RSSB, 0)
	c.UserPSSAllInPerConn = per(after.Total.PSSB, 0)
	c.UserAnonPerConn = per(after.Total.RSSAnonB, before.Total.RSSAnonB)
	c.HeapPerConn = per(after.Total.HeapInuseB, before.Total.HeapInuseB)
	c.GoroutinesPerConn = per(after.Total.Goroutines, before.Total.Goroutines)
	c.SlabPerConn = per(after.Kernel.SlabB, before.Kernel.SlabB)
	c.TCPMemPerConn = per(after.Kernel.TCPMemB, before.Kernel.TCPMemB)
	c.KernelPerConn = c.SlabPerConn + c.TCPMemPerConn
	return c
}

// The nodes' counters of close frames received and of the closes they
// started on a timeout.
const (
	closeCodesReceived = "wspush_close_codes_received_total"
	timeoutCloses      = "wspush_timeout_closes_total"
)

// Ended is the nodes once the clients closed.
type Ended struct {
	// Conns is the connections the nodes still count (0 once every
	// close was handled).
	Conns int64 `json:"conns"`
	// Closes1001 counts the close frames with 1001 the nodes received.
	Closes1001 int64 `json:"closes_1001"`
	// IdleCloses and ReadTimeoutCloses count, over the whole run, the
	// clients the nodes closed on a timeout (wspush_timeout_closes_total).
	IdleCloses int64 `json:"idle_closes"`
	// ReadTimeoutCloses is the kind="read" part.
	ReadTimeoutCloses int64 `json:"read_timeout_closes"`
	// Seconds is how long the nodes took to count no connection.
	Seconds float64 `json:"seconds"`
}

// awaitClosed polls the nodes' /metrics until they count no connection
// (at most limit), then counts the 1001 close frames they received.
func awaitClosed(ctx context.Context, nodes []*Node, limit time.Duration) Ended {
	start := time.Now()
	var e Ended
	for {
		e = Ended{}
		for _, n := range nodes {
			m, err := serverstat.FetchMetrics(ctx, n.API)
			if err != nil {
				e.Conns = -1
				continue
			}
			if v, ok := m.Sum(serverstat.Connections); ok {
				e.Conns += int64(v)
			}
			if v, ok := m.Sum(closeCodesReceived, "code", "1001"); ok {
				e.Closes1001 += int64(v)
			}
			if v, ok := m.Sum(timeoutCloses, "kind", "idle"); ok {
				e.IdleCloses += int64(v)
			}
			if v, ok := m.Sum(timeoutCloses, "kind", "read"); ok {
				e.ReadTimeoutCloses += int64(v)
			}
		}
		e.Seconds = time.Since(start).Seconds()
		if e.Conns == 0 || time.Since(start) > limit || ctx.Err() != nil {
			return e
		}
		time.Sleep(200 * time.Millisecond)
	}
}
