package stats

import "sync"

// RateWindow is the shortest span, in seconds, a Point's Rate is taken
// over: the clients' counters reach the sampler a few milliseconds late,
// so a rate over a shorter span would mostly show that lag.
const RateWindow = 0.05

// Point is one sample of a run's time series.
type Point struct {
	// T is seconds since the run started.
	T float64 `json:"t_s"`
	// Phase names the phase boundary this point was taken at ("connected",
	// "published", ...); empty for a periodic sample.
	Phase string `json:"phase,omitempty"`
	// Conns is the number of client connections up (bench side).
	Conns int64 `json:"conns"`
	// Deliveries is the cumulative number of deliveries received (bench
	// side, over every client).
	Deliveries int64 `json:"deliveries"`
	// Rate is deliveries per second since the latest earlier point at
	// least RateWindow before this one (or the first point).
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

// Series is a time series that samplers append to while others read.
type Series struct {
	mu  sync.Mutex
	pts []Point
}

// Add appends p, computing its Rate from an earlier point (see Point.Rate).
// Points must come in time order.
func (s *Series) Add(p Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.pts) - 1; i >= 0; i-- {
		prev := s.pts[i]
		if dt := p.T - prev.T; dt >= RateWindow || (i == 0 && dt > 0) {
			p.Rate = float64(p.Deliveries-prev.Deliveries) / dt
			break
		}
	}
	s.pts = append(s.pts, p)
}

// Last returns the latest point (false: none yet).
func (s *Series) Last() (Point, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pts) == 0 {
		return Point{}, false
	}
	return s.pts[len(s.pts)-1], true
}

// Points returns a copy of the points so far.
func (s *Series) Points() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Point(nil), s.pts...)
}
