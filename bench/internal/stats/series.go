package stats

import "sync"

// Point is one sample of a run's time series.
type Point struct {
	// T is seconds since the run started.
	T float64 `json:"t_s"`
	// Conns is the number of client connections up.
	Conns int64 `json:"conns"`
	// Deliveries is the cumulative number of deliveries received.
	Deliveries int64 `json:"deliveries"`
	// Rate is deliveries per second since the previous point.
	Rate float64 `json:"deliveries_per_s"`
	// Published is the cumulative number of messages published.
	Published int64 `json:"published"`
	// Errors is the cumulative number of client-side errors (failed dials,
	// connections lost, publish errors).
	Errors int64 `json:"errors"`
	// Cycles is the cumulative number of churn cycles.
	Cycles int64 `json:"cycles,omitempty"`
	// ServerRSS is the server's resident set in bytes (0: not measured).
	ServerRSS int64 `json:"server_rss_bytes,omitempty"`
	// ServerCPU is the server's utime+stime in seconds (0: not measured).
	ServerCPU float64 `json:"server_cpu_s,omitempty"`
}

// Series is a time series that one sampler appends to while others read.
type Series struct {
	mu  sync.Mutex
	pts []Point
}

// Add appends p, computing its Rate from the previous point.
func (s *Series) Add(p Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.pts); n > 0 {
		prev := s.pts[n-1]
		if dt := p.T - prev.T; dt > 0 {
			p.Rate = float64(p.Deliveries-prev.Deliveries) / dt
		}
	}
	s.pts = append(s.pts, p)
}

// Points returns a copy of the points so far.
func (s *Series) Points() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Point(nil), s.pts...)
}
