package server

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wspush/wspush/engine/redis"
	"github.com/wspush/wspush/internal/latency"
	"github.com/wspush/wspush/wsconn"
)

// metrics are the server's Prometheus metrics. Hot-path counters live as
// atomics in wsconn.Stats and here; the collector reads them at scrape time,
// so a delivery costs one atomic add, not a metric lookup.
type metrics struct {
	reg *prometheus.Registry

	published      atomic.Int64 // publishes accepted (API and clients)
	recipients     atomic.Int64 // sum over publishes of subscribers offered the frame
	upgradeFail    [len(failReasons)]atomic.Int64
	fanoutSeconds  prometheus.Histogram
	apiPublishErrs atomic.Int64
	disconnected   atomic.Int64 // connections closed by POST /api/disconnect
}

// Upgrade failure reasons counted by HTTP status, the label values of
// wspush_upgrade_failures_total; the collector adds "timeout" (the request
// was not complete in time) and "closed" (the client left before it was),
// which wsconn counts.
var failReasons = [...]string{"bad_request", "unauthorized", "forbidden", "not_found", "rate_limited", "too_large", "unavailable"}

func (m *metrics) upgradeFailed(status int) {
	i := 0
	switch status {
	case http.StatusUnauthorized:
		i = 1
	case http.StatusForbidden:
		i = 2
	case http.StatusNotFound:
		i = 3
	case http.StatusTooManyRequests:
		i = 4
	case http.StatusRequestHeaderFieldsTooLarge:
		i = 5
	case http.StatusServiceUnavailable:
		i = 6
	}
	m.upgradeFail[i].Add(1)
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.fanoutSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wspush_publish_duration_seconds",
		Help:    "Time a publish takes: with the embedded engine until its frame is queued to the last local subscriber, with Redis the round trip of its Lua step.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.fanoutSeconds,
		s.brokerLag,
		&statsCollector{s: s},
	)
	return m
}

// newBrokerLag is the histogram of the time from a publish (the broker's
// clock) to its arrival on this node (this node's clock).
func newBrokerLag() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wspush_broker_delivery_lag_seconds",
		Help:    "Time from a publish in the broker (Redis's clock) to its arrival on this node, before the local fan-out; as good as the two clocks agree. Empty with the embedded engine.",
		Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
	})
}

// statsCollector turns the atomics into metrics at scrape time.
type statsCollector struct{ s *Server }

var (
	descConns         = prometheus.NewDesc("wspush_connections", "Upgraded WebSocket connections open now.", nil, nil)
	descRegistered    = prometheus.NewDesc("wspush_connections_registered", "Sockets held now, in any state (handshaking, open, closing).", nil, nil)
	descAccepted      = prometheus.NewDesc("wspush_accepted_total", "TCP connections accepted on the WebSocket listener.", nil, nil)
	descUpgrades      = prometheus.NewDesc("wspush_upgrades_total", "Successful WebSocket upgrades.", nil, nil)
	descUpFail        = prometheus.NewDesc("wspush_upgrade_failures_total", "Upgrades refused or failed, by reason.", []string{"reason"}, nil)
	descPublished     = prometheus.NewDesc("wspush_messages_published_total", "Messages published (API and client publishes).", nil, nil)
	descRecipients    = prometheus.NewDesc("wspush_publish_recipients_total", "Sum over publishes of the subscribers each was offered to.", nil, nil)
	descDelivered     = prometheus.NewDesc("wspush_messages_delivered_total", "Messages written to client sockets.", nil, nil)
	descDropped       = prometheus.NewDesc("wspush_messages_dropped_total", "Messages dropped by the slow-consumer policy, by policy.", []string{"policy"}, nil)
	descConflated     = prometheus.NewDesc("wspush_conflated_total", "Queued, unwritten messages of a conflated topic (--topic-policy conflate) replaced by a newer one of the same topic.", nil, nil)
	descLost          = prometheus.NewDesc("wspush_messages_lost_total", "Messages discarded because their connection closed before delivery.", nil, nil)
	descSlowClosed    = prometheus.NewDesc("wspush_slow_consumer_closes_total", "Connections closed as slow consumers.", nil, nil)
	descTimeoutClosed = prometheus.NewDesc("wspush_timeout_closes_total", "Connections the server closed on a timeout, by kind: idle (nothing, not even a pong, for --idle-timeout) or read (a message incomplete for --read-timeout).", []string{"kind"}, nil)
	descWrites        = prometheus.NewDesc("wspush_socket_writes_total", "writev calls that wrote to client sockets; wspush_messages_delivered_total over this is deliveries per write.", nil, nil)
	descWriteErr      = prometheus.NewDesc("wspush_write_errors_total", "Socket writes that failed or timed out.", nil, nil)
	descCloseSent     = prometheus.NewDesc("wspush_close_codes_sent_total", "Close frames sent, by code.", []string{"code"}, nil)
	descCloseRecv     = prometheus.NewDesc("wspush_close_codes_received_total", "Close frames received, by code.", []string{"code"}, nil)
	descQueued        = prometheus.NewDesc("wspush_send_queue_frames", "Frames waiting in connection out queues now.", nil, nil)
	descWriters       = prometheus.NewDesc("wspush_writer_goroutines", "Writer goroutines running now.", nil, nil)
	descPoolRunning   = prometheus.NewDesc("wspush_worker_pool_busy", "Dispatch workers serving a connection now.", nil, nil)
	descPoolAlive     = prometheus.NewDesc("wspush_worker_pool_goroutines", "Dispatch worker goroutines alive (busy or idle).", nil, nil)
	descPoolCap       = prometheus.NewDesc("wspush_worker_pool_capacity", "Dispatch worker pool size.", nil, nil)
	descPanics        = prometheus.NewDesc("wspush_handler_panics_total", "Panics recovered while serving a connection (each closed that connection only).", nil, nil)
	descTopics        = prometheus.NewDesc("wspush_topics", "Topics this node has subscribers for.", nil, nil)
	descHistory       = prometheus.NewDesc("wspush_history_bytes", "Memory held by the history kept for recovery (--history-size), in bytes.", nil, nil)
	descEngTopics     = prometheus.NewDesc("wspush_engine_topics", "Topics the engine holds: listened to, or with history.", nil, nil)
	descNode          = prometheus.NewDesc("wspush_node_info", "This node: its name and engine (embedded or redis).", []string{"node", "engine"}, nil)
	descGaps          = prometheus.NewDesc("wspush_gaps_filled_total", "Seq gaps (publications this node missed) filled from history.", nil, nil)
	descResets        = prometheus.NewDesc("wspush_resets_total", "Resets sent to a topic's subscribers: publications lost that history could not give back, or a new run of the topic.", nil, nil)
	descBrokerUp      = prometheus.NewDesc("wspush_broker_up", "1 when the broker answers on both its connections, else 0 (always 1 for the embedded engine).", nil, nil)
	descReconnects    = prometheus.NewDesc("wspush_broker_reconnects_total", "Times the broker's pub/sub connection came back.", nil, nil)
	descPings         = prometheus.NewDesc("wspush_pings_sent_total", "Keepalive pings sent, by how: carried (in the write of a frame pushed within a sweep), direct (written by the sweeper, the connection stayed idle) or queued.", []string{"how"}, nil)
	descDelivLat      = prometheus.NewDesc("wspush_delivery_latency_seconds", "Sampled publishes (one per --latency-sample): time from the publication's arrival at this node's fan-out to each socket write that carried it. Bucket bounds are exclusive.", nil, nil)
	descFanout        = prometheus.NewDesc("wspush_fanout_seconds", "Sampled publishes: time from the publication's arrival at this node's fan-out to the socket write to its last recipient (end of the fan-out). Bucket bounds are exclusive.", nil, nil)
	descCompressed    = prometheus.NewDesc("wspush_messages_compressed_total", "Messages written compressed (permessage-deflate, --compression): a part of wspush_messages_delivered_total.", nil, nil)
	descDisconnected  = prometheus.NewDesc("wspush_user_disconnects_total", "Connections this node closed with 4001 for POST /api/disconnect (sent to any node).", nil, nil)
	descCtlDropped    = prometheus.NewDesc("wspush_control_dropped_total", "Control messages from other nodes (disconnects) dropped because 256 were waiting.", nil, nil)
	descPingsSkipped  = prometheus.NewDesc("wspush_pings_skipped_total", "Keepalive rounds that sent no ping because deliveries were written to the connection since its last round (they prove it alive).", nil, nil)
	descPongs         = prometheus.NewDesc("wspush_pongs_received_total", "Pong frames received.", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descRegistered, descAccepted, descUpgrades, descUpFail,
		descPublished, descRecipients, descDelivered, descDropped, descConflated, descLost, descSlowClosed, descTimeoutClosed, descWrites, descWriteErr,
		descCloseSent, descCloseRecv, descQueued, descWriters, descPoolRunning, descPoolAlive, descPoolCap, descPanics, descTopics, descHistory, descEngTopics,
		descNode, descGaps, descResets, descBrokerUp, descReconnects, descPings, descPingsSkipped, descPongs, descDelivLat, descFanout, descDisconnected, descCtlDropped, descCompressed} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.ws.Stats()
	m := s.metrics
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v int64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(descConns, float64(s.ws.Upgraded()))
	gauge(descRegistered, float64(st.Open.Load()))
	counter(descAccepted, st.Accepted.Load())
	counter(descUpgrades, st.Upgraded.Load())
	for i, r := range failReasons {
		counter(descUpFail, m.upgradeFail[i].Load(), r)
	}
	counter(descUpFail, st.HandshakeTimeouts.Load(), "timeout")
	counter(descUpFail, st.HandshakeAborted.Load(), "closed")
	counter(descPublished, m.published.Load())
	counter(descRecipients, m.recipients.Load())
	counter(descDisconnected, m.disconnected.Load())
	counter(descCtlDropped, s.ctl.dropped.Load())
	counter(descDelivered, st.Delivered.Load())
	counter(descCompressed, st.DeliveredCompressed.Load())
	counter(descDropped, st.DroppedOldest.Load(), "drop-oldest")
	counter(descDropped, st.DroppedNewest.Load(), "drop-newest")
	counter(descDropped, st.DroppedClose.Load(), "close")
	counter(descConflated, st.Conflated.Load())
	counter(descLost, st.LostClosed.Load())
	counter(descSlowClosed, st.SlowClosed.Load())
	counter(descTimeoutClosed, st.IdleClosed.Load(), "idle")
	counter(descTimeoutClosed, st.ReadTimeoutClosed.Load(), "read")
	counter(descWrites, st.Writes.Load())
	counter(descWriteErr, st.WriteErrors.Load())
	for i := 0; i < wsconn.CloseSlots; i++ {
		code := closeLabel(wsconn.SlotCode(i))
		counter(descCloseSent, st.CloseSent(i), code)
		counter(descCloseRecv, st.CloseReceived(i), code)
	}
	gauge(descQueued, float64(s.ws.Queued()))
	gauge(descWriters, float64(st.Writers.Load()))
	gauge(descPoolRunning, float64(s.ws.WorkersBusy()))
	gauge(descPoolAlive, float64(s.ws.WorkersAlive()))
	gauge(descPoolCap, float64(s.ws.WorkersCap()))
	counter(descPanics, st.Panics.Load())
	direct, carried := st.PingsDirect.Load(), st.PingsCarried.Load()
	counter(descPings, direct, "direct")
	counter(descPings, carried, "carried")
	counter(descPings, st.Pings.Load()-direct-carried, "queued")
	counter(descPingsSkipped, st.PingsSkipped.Load())
	counter(descPongs, st.Pongs.Load())
	if r := s.latency; r != nil {
		for d, h := range map[*prometheus.Desc]*latency.Hist{descDelivLat: &r.Delivery, descFanout: &r.Fanout} {
			snap := h.Snapshot()
			ch <- prometheus.MustNewConstHistogram(d, snap.Count, snap.SumSeconds, snap.Cumulative)
		}
	}
	gauge(descTopics, float64(s.hub.Topics()))
	kind := "embedded"
	if s.cfg.Broker != "" {
		kind = "redis"
	}
	gauge(descNode, 1, s.cfg.NodeName, kind)
	counter(descGaps, s.hub.GapsFilled())
	counter(descResets, s.hub.Resets())
	up := 1.0
	if s.engineHealth() != nil {
		up = 0
	}
	gauge(descBrokerUp, up)
	if e, ok := s.hub.Engine().(*redis.Engine); ok {
		counter(descReconnects, e.Stats().Reconnects.Load())
	}
	if e, ok := s.hub.Engine().(interface {
		HistoryBytes() int64
		Topics() int
	}); ok {
		gauge(descHistory, float64(e.HistoryBytes()))
		gauge(descEngTopics, float64(e.Topics()))
	}
}

func closeLabel(code int) string {
	switch code {
	case 0:
		return "other"
	case -1:
		return "none"
	}
	return strconv.Itoa(code)
}
