package wsconn

import (
	"io"
	"runtime"
	"testing"

	"github.com/wspush/wspush/internal/slowpolicy"
	"github.com/wspush/wspush/protocol"
)

// BenchmarkSendToSocket measures the write path per message: Send on a
// connection whose client reads everything, through the queue, the writer
// (started on demand or persistent) and writev. It reports allocations per
// message, which must be zero: frames, entry slices and writer scratch are
// pooled. The conflated variants send deliveries of one conflated topic:
// each replaces the one still queued, if any.
func BenchmarkSendToSocket(b *testing.B) {
	for _, tc := range sendCases {
		b.Run(tc.name, func(b *testing.B) { benchSendToSocket(b, tc.mode, tc.key) })
	}
}

// sendCases are BenchmarkSendToSocket's variants: both writer modes, plain
// and conflated (key: bpool.Frame.Conflate).
var sendCases = []struct {
	name string
	mode WriterMode
	key  uint64
}{
	{"on-demand", WriterOnDemand, 0},
	{"persistent", WriterPersistent, 0},
	{"on-demand/conflated", WriterOnDemand, 7},
	{"persistent/conflated", WriterPersistent, 7},
}

func benchSendToSocket(b *testing.B, mode WriterMode, key uint64) {
	send, ts := sendToSocket(b, mode, key)
	send(1000) // warm the pools and the writer's first start
	waitQueuedEmpty(b, ts)
	b.ReportAllocs()
	b.ResetTimer()
	before := ts.srv.Stats().Conflated.Load()
	send(b.N)
	b.StopTimer()
	waitQueuedEmpty(b, ts)
	if key != 0 {
		b.ReportMetric(float64(ts.srv.Stats().Conflated.Load()-before)/float64(b.N), "replaced/op")
	}
}

// sendToSocket starts a server with one connection whose client reads
// everything, and returns send(n): n deliveries (of a conflated topic when
// key is not 0) pushed no faster than the socket drains (a backlog would
// only measure the pool growing to hold it).
func sendToSocket(tb testing.TB, mode WriterMode, key uint64) (send func(n int), ts *testServer) {
	ts = startServer(tb, Config{Writer: mode, SendQueue: 1 << 16}, nil)
	c, rec := ts.dialRec(tb)
	go io.Copy(io.Discard, c.Conn)
	data := []byte(`{"price":101.25,"sym":"ABC"}`)
	return func(n int) {
		for i := range n {
			f := protocol.NewDeliveryFrame("prices", uint64(i+1), data)
			if key != 0 {
				f.Slow, f.Conflate = slowpolicy.Conflate, key
			}
			rec.conn.Send(f)
			for rec.conn.Pending() > 64 {
				runtime.Gosched()
			}
		}
	}, ts
}

// BenchmarkBroadcastEnqueue measures one shared frame queued to 1,000
// connections (what a publish does per subscriber). One op is 1,000
// deliveries: divide allocs/op by 1,000 for the per-message figure (the few
// per op are writer goroutine stacks and pooled slices refilled after GC).
func BenchmarkBroadcastEnqueue(b *testing.B) {
	const n = 1000
	ts := startServer(b, Config{SendQueue: 1 << 12}, nil)
	var conns []*Conn
	for range n {
		c, rec := ts.dialRec(b)
		go io.Copy(io.Discard, c.Conn)
		conns = append(conns, rec.conn)
	}
	data := []byte(`{"score":"3-1"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := protocol.NewDeliveryFrame("match", uint64(i+1), data)
		f.Retain(n)
		for _, c := range conns {
			c.Send(f)
		}
		f.Release()
	}
	b.StopTimer()
	waitQueuedEmpty(b, ts)
}
