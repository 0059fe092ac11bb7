package server

import (
	"hash/maphash"
	"net/netip"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits bounds what clients may use. The zero value is valid; each field
// says its default and what zero means.
type Limits struct {
	// MaxConnsPerIP caps open connections from one IP address; more get
	// HTTP 429 at the upgrade. Zero means no cap.
	MaxConnsPerIP int
	// UpgradeRate caps upgrades per second across the server (burst the
	// same); more get 429. Zero means no cap.
	UpgradeRate float64
	// UpgradeRatePerIP caps upgrades per second from one IP address (burst
	// the same, at least 1); more get 429. Zero means no cap.
	UpgradeRatePerIP float64
	// MaxSubscriptions caps the topics one connection subscribes to. Zero
	// means DefaultMaxSubscriptions; negative means no cap.
	MaxSubscriptions int
	// MaxTopics caps the topics that exist (a topic exists while it has
	// subscribers); a subscribe that would create one more fails. A publish
	// never creates a topic. Zero means DefaultMaxTopics; negative means no
	// cap.
	MaxTopics int
	// CommandRate caps commands per second from one connection (burst twice
	// that); more get the error "limit". Zero means DefaultCommandRate;
	// negative means no cap.
	CommandRate float64
	// MaxMemory is a memory budget in bytes for the Go runtime's mapped
	// memory; above it new connections get 503 and /readyz says why. Zero
	// means no budget.
	MaxMemory int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxSubscriptions == 0 {
		l.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if l.MaxTopics == 0 {
		l.MaxTopics = DefaultMaxTopics
	}
	if l.CommandRate == 0 {
		l.CommandRate = DefaultCommandRate
	}
	return l
}

// ipShards is the number of shards of the per-IP tables.
const ipShards = 32

// ipTable counts connections and holds upgrade limiters per client IP.
type ipTable struct {
	seed   maphash.Seed
	shards [ipShards]ipShard
}

type ipShard struct {
	mu    sync.Mutex
	conns map[netip.Addr]int32        // open connections; guarded by mu
	rates map[netip.Addr]*ipRateEntry // upgrade limiters; guarded by mu
}

type ipRateEntry struct {
	lim  *rate.Limiter
	seen time.Time // last use, for eviction
}

func newIPTable() *ipTable {
	t := &ipTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].conns = make(map[netip.Addr]int32)
		t.shards[i].rates = make(map[netip.Addr]*ipRateEntry)
	}
	return t
}

func (t *ipTable) shard(ip netip.Addr) *ipShard {
	b := ip.As16()
	return &t.shards[maphash.Bytes(t.seed, b[:])%ipShards]
}

// acquire counts one more connection from ip unless that exceeds limit.
func (t *ipTable) acquire(ip netip.Addr, limit int) bool {
	s := t.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 && int(s.conns[ip]) >= limit {
		return false
	}
	s.conns[ip]++
	return true
}

// release forgets one connection from ip.
func (t *ipTable) release(ip netip.Addr) {
	s := t.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.conns[ip] - 1; n > 0 {
		s.conns[ip] = n
	} else {
		delete(s.conns, ip)
	}
}

// allowUpgrade takes a token from ip's upgrade limiter.
func (t *ipTable) allowUpgrade(ip netip.Addr, perSecond float64, now time.Time) bool {
	s := t.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.rates[ip]
	if e == nil {
		e = &ipRateEntry{lim: rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))}
		s.rates[ip] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// evictIdle drops upgrade limiters unused for longer than idle (they would
// be full again anyway), so the table stays bounded by recent clients.
func (t *ipTable) evictIdle(now time.Time, idle time.Duration) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for ip, e := range s.rates {
			if now.Sub(e.seen) > idle {
				delete(s.rates, ip)
			}
		}
		s.mu.Unlock()
	}
}

// memoryGuard samples the runtime's memory against the budget.
type memoryGuard struct {
	budget  int64
	over    atomic.Bool
	lastUse atomic.Int64
	samples []rtmetrics.Sample
}

func newMemoryGuard(budget int64) *memoryGuard {
	return &memoryGuard{budget: budget, samples: []rtmetrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}}
}

// sample reads the runtime's mapped, unreleased memory and updates over.
// Called from one goroutine only.
func (m *memoryGuard) sample() {
	rtmetrics.Read(m.samples)
	used := int64(m.samples[0].Value.Uint64()) - int64(m.samples[1].Value.Uint64())
	m.lastUse.Store(used)
	m.over.Store(m.budget > 0 && used > m.budget)
}
