package server

import (
	"time"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/engine/memory"
	"github.com/wspush/wspush/engine/redis"
	"github.com/wspush/wspush/internal/bpool"
	"github.com/wspush/wspush/internal/wsframe"
	"github.com/wspush/wspush/protocol"
)

// newEngine builds the engine Config.Broker asks for: the embedded memory
// engine without one, Redis with a redis:// or rediss:// URL, a Redis
// Cluster with redis+cluster:// or rediss+cluster://.
func (s *Server) newEngine(h engine.Handler) (engine.Engine, error) {
	maxTopics := max(s.cfg.Limits.MaxTopics, 0)
	if s.cfg.Broker == "" {
		return memory.New(memory.Config{HistorySize: s.cfg.HistorySize, HistoryTTL: s.cfg.HistoryTTL, MaxTopics: maxTopics}, h), nil
	}
	return redis.New(redis.Config{URL: s.cfg.Broker, HistorySize: s.cfg.HistorySize, HistoryTTL: s.cfg.HistoryTTL,
		Timeout: s.cfg.EngineTimeout, ObserveLag: func(d time.Duration) { s.brokerLag.Observe(d.Seconds()) }}, h)
}

// encodeReset frames the reset message of a topic whose subscribers lost
// publications this node could not recover.
func encodeReset(topic string, pos engine.Position) *bpool.Frame {
	if topic == controlTopic {
		return bpool.NewFrame(0) // the control subscriber's "nothing to do"
	}
	var b [256]byte
	p := protocol.AppendReset(b[:0], topic, pos)
	f := wsframe.NewText(len(p))
	f.B = append(f.B, p...)
	return f
}

// engineHealth is the engine's last broker error, nil when healthy (the
// memory engine always is).
func (s *Server) engineHealth() error {
	if e, ok := s.hub.Engine().(interface{ Healthy() error }); ok {
		return e.Healthy()
	}
	return nil
}
