package server

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
	"github.com/wspush/wspush/wsconn"
)

// session is the server's per-connection state, stored as the Conn's value.
type session struct {
	mu     sync.Mutex   // guards closed and topics
	closed bool         // OnClose ran: subscribe nothing more
	topics []*hub.Topic // current subscriptions

	// Set by Accept before the upgrade completes, then read-only.
	ip        netip.Addr // the client's address (clientIP): what per-IP limits count
	ipCounted bool       // counted in Server.ips: OnClose releases it
	claims    *claims    // the connect token's claims; nil when auth is off

	lim *rate.Limiter // command rate; created on the first command; worker only
}

// errTooManySubs is the per-connection subscription cap.
var errTooManySubs = errors.New("too many subscriptions for this connection")

// subscribeLocked adds the connection to a topic once. ss.mu must be held.
func (s *Server) subscribeLocked(ss *session, c *wsconn.Conn, name string) error {
	for _, t := range ss.topics {
		if t.Name() == name {
			return nil
		}
	}
	if m := s.cfg.Limits.MaxSubscriptions; m > 0 && len(ss.topics) >= m {
		return errTooManySubs
	}
	t, err := s.hub.Subscribe(name, c)
	if err != nil {
		return err
	}
	ss.topics = append(ss.topics, t)
	return nil
}

// unsubscribeLocked removes the connection from a topic. ss.mu must be held.
func unsubscribeLocked(ss *session, c *wsconn.Conn, name string) {
	for i, t := range ss.topics {
		if t.Name() == name {
			t.Unsubscribe(c)
			last := len(ss.topics) - 1
			ss.topics[i] = ss.topics[last]
			ss.topics[last] = nil
			ss.topics = ss.topics[:last]
			return
		}
	}
}

// handler adapts Server to wsconn.Handler.
type handler Server

func (h *handler) srv() *Server { return (*Server)(h) }

// Accept implements wsconn.Handler: path, Origin, capacity, rate limits,
// the connect token and the topics are checked, then the query's
// subscriptions are made, all before the 101.
func (h *handler) Accept(c *wsconn.Conn, r *wsconn.Request) error {
	s := h.srv()
	u, err := url.ParseRequestURI(r.URI)
	if err != nil {
		return &wsconn.HTTPError{Status: http.StatusBadRequest, Reason: "bad request target"}
	}
	if u.Path != "/ws" {
		return &wsconn.HTTPError{Status: http.StatusNotFound, Reason: "not found: the WebSocket endpoint is /ws"}
	}
	if !s.originAllowed(r.Origin) {
		return &wsconn.HTTPError{Status: http.StatusForbidden, Reason: "origin not allowed"}
	}
	if s.memory.over.Load() {
		return &wsconn.HTTPError{Status: http.StatusServiceUnavailable, Reason: "memory budget exceeded"}
	}
	ss := &session{ip: clientIP(c.RemoteAddr().Addr(), r.ForwardedFor, s.cfg.TrustedProxies)}
	c.SetValue(ss)
	lim := s.cfg.Limits
	now := time.Now()
	if s.upRate != nil && !s.upRate.AllowN(now, 1) {
		return &wsconn.HTTPError{Status: http.StatusTooManyRequests, Reason: "upgrade rate limit"}
	}
	if lim.UpgradeRatePerIP > 0 && !s.ips.allowUpgrade(ss.ip, lim.UpgradeRatePerIP, now) {
		return &wsconn.HTTPError{Status: http.StatusTooManyRequests, Reason: "upgrade rate limit for this address"}
	}
	if lim.MaxConnsPerIP > 0 {
		if !s.ips.acquire(ss.ip, lim.MaxConnsPerIP) {
			return &wsconn.HTTPError{Status: http.StatusTooManyRequests, Reason: "too many connections from this address"}
		}
		ss.ipCounted = true
	}
	q := u.Query()
	if s.auth != nil {
		token := q.Get("token")
		if token == "" {
			token = bearer(r.Authorization)
		}
		cl, err := s.auth.verify(token)
		if err != nil {
			return &wsconn.HTTPError{Status: http.StatusUnauthorized, Reason: err.Error()}
		}
		ss.claims = cl
	}
	var names []string
	for _, v := range q["topics"] {
		for _, name := range strings.Split(v, ",") {
			if !protocol.ValidTopic(name) {
				return &wsconn.HTTPError{Status: http.StatusBadRequest, Reason: "bad topic: names are 1-128 bytes of [A-Za-z0-9_.:-]"}
			}
			if ss.claims != nil && !ss.claims.allows(name) {
				return &wsconn.HTTPError{Status: http.StatusForbidden, Reason: "topic not allowed by the token: " + name}
			}
			names = append(names, name)
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, name := range names {
		if err := s.subscribeLocked(ss, c, name); err != nil {
			status := http.StatusServiceUnavailable
			if errors.Is(err, errTooManySubs) {
				status = http.StatusBadRequest
			}
			return &wsconn.HTTPError{Status: status, Reason: err.Error()}
		}
	}
	return nil
}

// originAllowed applies the allow-list; see Config.AllowedOrigins.
func (s *Server) originAllowed(origin string) bool {
	if origin == "" || len(s.cfg.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// OnRefused implements wsconn.Handler.
func (h *handler) OnRefused(c *wsconn.Conn, status int, reason string) {
	h.srv().metrics.upgradeFailed(status)
}

// OnClose implements wsconn.Handler: every subscription goes.
func (h *handler) OnClose(c *wsconn.Conn, cause error) {
	ss, _ := c.Value().(*session)
	if ss == nil {
		return
	}
	ss.mu.Lock()
	ss.closed = true
	for _, t := range ss.topics {
		t.Unsubscribe(c)
	}
	ss.topics = nil
	counted := ss.ipCounted
	ss.ipCounted = false
	ss.mu.Unlock()
	if counted {
		h.srv().ips.release(ss.ip)
	}
}

// OnMessage implements wsconn.Handler: one protocol v1 command per message.
func (h *handler) OnMessage(c *wsconn.Conn, op ws.OpCode, p []byte) {
	s := h.srv()
	cmd, err := protocol.ParseCommand(p)
	if err != nil {
		var ce *protocol.CommandError
		if errors.As(err, &ce) {
			replyError(c, ce.HasID, ce.ID, ce.Code, ce.Message)
		}
		return
	}
	ss, _ := c.Value().(*session)
	if ss == nil {
		return
	}
	if r := s.cfg.Limits.CommandRate; r > 0 {
		if ss.lim == nil {
			ss.lim = rate.NewLimiter(rate.Limit(r), max(1, int(2*r)))
		}
		if !ss.lim.Allow() {
			replyError(c, cmd.HasID, cmd.ID, protocol.CodeLimit, "too many commands")
			return
		}
	}
	if ss.claims != nil {
		denied := cmd.Topic != "" && !ss.claims.allows(cmd.Topic)
		for _, name := range cmd.Topics {
			denied = denied || (cmd.Op == protocol.OpSubscribe && !ss.claims.allows(name))
		}
		if denied {
			replyError(c, cmd.HasID, cmd.ID, protocol.CodeForbidden, "topic not allowed by the token")
			return
		}
	}
	switch cmd.Op {
	case protocol.OpSubscribe:
		ss.mu.Lock()
		for _, name := range cmd.Topics {
			if ss.closed {
				break
			}
			if err := s.subscribeLocked(ss, c, name); err != nil {
				ss.mu.Unlock()
				replyError(c, cmd.HasID, cmd.ID, protocol.CodeLimit, err.Error())
				return
			}
		}
		ss.mu.Unlock()
	case protocol.OpUnsubscribe:
		ss.mu.Lock()
		for _, name := range cmd.Topics {
			unsubscribeLocked(ss, c, name)
		}
		ss.mu.Unlock()
	case protocol.OpPublish:
		if !s.cfg.ClientPublish {
			replyError(c, cmd.HasID, cmd.ID, protocol.CodeDisabled, "client publish is disabled on this server")
			return
		}
		// The ack goes first so that it precedes this publish's own delivery.
		if cmd.HasID {
			replyAck(c, cmd.ID)
		}
		if _, err := s.publish(cmd.Topic, cmd.Data); err != nil {
			replyError(c, cmd.HasID, cmd.ID, protocol.CodeLimit, err.Error())
		}
		return
	}
	if cmd.HasID {
		replyAck(c, cmd.ID)
	}
}

func replyAck(c *wsconn.Conn, id int64) {
	var b [64]byte
	c.SendReply(protocol.AppendAck(b[:0], id))
}

func replyError(c *wsconn.Conn, hasID bool, id int64, code, msg string) {
	var b [256]byte
	c.SendReply(protocol.AppendError(b[:0], hasID, id, code, msg))
}
