package report

// Agreement statuses.
const (
	AgreePass = "pass"
	AgreeFail = "FAIL"
	AgreeNA   = "n/a"
)

// ServerLatency is the server's own latency figures over a broadcast run,
// from the deltas of its histograms (wspush_delivery_latency_seconds and
// wspush_fanout_seconds) between the before and after snapshots, and how
// they agree with what the clients measured. Quantiles are estimates,
// interpolated within the histograms' buckets (10µs × 2^i).
type ServerLatency struct {
	// Exported tells whether the server's /metrics has both histograms
	// (false for the peers: everything else is zero and the agreement n/a).
	Exported bool `json:"exported"`
	// Samples is the number of sampled publishes timed (the fan-out
	// histogram's count).
	Samples uint64 `json:"samples"`
	// Deliveries is the number of deliveries timed (the delivery
	// histogram's count).
	Deliveries uint64 `json:"deliveries"`
	// DeliveryP50Ms and DeliveryP99Ms are per recipient: from the
	// publication's arrival at the fan-out to the socket write.
	DeliveryP50Ms float64 `json:"delivery_p50_ms"`
	// DeliveryP99Ms is the delivery histogram's 99th percentile.
	DeliveryP99Ms float64 `json:"delivery_p99_ms"`
	// FanoutP50Ms and FanoutP99Ms are per sampled publish: from its
	// arrival to the write to its last recipient.
	FanoutP50Ms float64 `json:"fanout_p50_ms"`
	// FanoutP99Ms is the fan-out histogram's 99th percentile.
	FanoutP99Ms float64 `json:"fanout_p99_ms"`
	// Agreement compares these with the clients' figures.
	Agreement Agreement `json:"agreement"`
}

// Agreement is the check that the server's latency figure agrees with the
// clients': the clients measure from the publisher's send of the API
// request to their read, the server from the publication's arrival at its
// fan-out to the socket write, so the server's p50 may exceed the clients'
// only by the histogram's resolution (one bucket: 2×), and the clients'
// p50 minus the server's is the path the server does not see (the API
// request, loopback, the clients' read and parse), held to BoundMs. The
// same holds between the server's fan-out p50 and the clients'
// last-subscriber median.
type Agreement struct {
	// Status is AgreePass, AgreeFail or AgreeNA.
	Status string `json:"status"`
	// Verdict explains Status.
	Verdict string `json:"verdict"`
	// ClientP50Ms is the clients' per-delivery p50.
	ClientP50Ms float64 `json:"client_p50_ms"`
	// ServerP50Ms is the server's per-delivery p50 estimate.
	ServerP50Ms float64 `json:"server_p50_ms"`
	// UnseenMs is ClientP50Ms − ServerP50Ms: what the server does not see.
	UnseenMs float64 `json:"clients_minus_server_p50_ms"`
	// LastSubMedianMs is the clients' median time to the last subscriber.
	LastSubMedianMs float64 `json:"last_sub_median_ms"`
	// FanoutP50Ms is the server's fan-out p50 estimate.
	FanoutP50Ms float64 `json:"fanout_p50_ms"`
	// FanoutUnseenMs is LastSubMedianMs − FanoutP50Ms.
	FanoutUnseenMs float64 `json:"last_sub_minus_fanout_p50_ms"`
	// BoundMs is the most either difference may be.
	BoundMs float64 `json:"bound_ms"`
	// BoundWhy states where BoundMs comes from.
	BoundWhy string `json:"bound_why,omitempty"`
}

// serverLatencyRows adds the server-measured rows to the latency section.
func serverLatencyRows(s *section, l *ServerLatency) {
	if l == nil {
		return
	}
	if !l.Exported || l.Samples == 0 {
		s.add("server-measured", "n/a")
		s.add("latency agreement", "%s: %s", l.Agreement.Status, l.Agreement.Verdict)
		return
	}
	s.add("server-measured per delivery", "p50 %.3f  p99 %.3f ms  (n=%d, interpolated in 2× buckets)", l.DeliveryP50Ms, l.DeliveryP99Ms, l.Deliveries)
	s.add("server-measured fan-out", "p50 %.3f  p99 %.3f ms over %d sampled publishes", l.FanoutP50Ms, l.FanoutP99Ms, l.Samples)
	a := l.Agreement
	s.add("clients minus server p50", "%.3f ms per delivery, %.3f ms last subscriber − fan-out (bound %.1f ms)", a.UnseenMs, a.FanoutUnseenMs, a.BoundMs)
	s.add("latency agreement", "%s: %s", a.Status, a.Verdict)
}
