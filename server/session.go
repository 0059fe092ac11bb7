package server

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/gobwas/ws"

	"github.com/wspush/wspush/clients/js"
	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
	"github.com/wspush/wspush/wsconn"
)

// session is the server's per-connection state, stored as the Conn's value.
// It is created by Accept and touched only by the Handler's callbacks, which
// wsconn runs on the connection's slot (one at a time, OnClose last), so it
// needs no lock.
type session struct {
	topics []*hub.Topic // current subscriptions

	// counted is the client's address (clientIP) when it holds a place in
	// Server.ips (the per-IP connection limit), which OnClose gives back;
	// nil when it holds none (the limit is off by default: a pointer keeps
	// the session in the 48-byte size class).
	counted *netip.Addr
	claims  *claims       // the connect token's claims; nil when auth is off
	lim     *rate.Limiter // command rate; created on the first command
}

// errTooManySubs is the per-connection subscription cap.
var errTooManySubs = errors.New("too many subscriptions for this connection")

// unsubscribe removes the connection from a topic.
func unsubscribe(ss *session, c *wsconn.Conn, name string) {
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
// subscriptions (and the user's stream, when the token has a sub) are made,
// all before the 101.
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
	ip := clientIP(c.RemoteAddr().Addr(), r.ForwardedFor, s.cfg.TrustedProxies)
	ss := &session{}
	c.SetValue(ss)
	lim := s.cfg.Limits
	now := time.Now()
	if s.upRate != nil && !s.upRate.AllowN(now, 1) {
		return &wsconn.HTTPError{Status: http.StatusTooManyRequests, Reason: "upgrade rate limit"}
	}
	if lim.UpgradeRatePerIP > 0 && !s.ips.allowUpgrade(ip, lim.UpgradeRatePerIP, now) {
		return &wsconn.HTTPError{Status: http.StatusTooManyRequests, Reason: "upgrade rate limit for this address"}
	}
	if lim.MaxConnsPerIP > 0 {
		if !s.ips.acquire(ip, lim.MaxConnsPerIP) {
			return &wsconn.HTTPError{Status: http.StatusTooManyRequests, Reason: "too many connections from this address"}
		}
		ss.counted = &ip
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
	names, since, herr := queryStreams(q, ss.claims)
	if herr != nil {
		return herr
	}
	ctx, cancel := s.engineContext()
	defer cancel()
	positions := len(since) > 0 || q.Get("positions") == "1"
	js, err := s.subscribeAll(ctx, ss, c, names, since, positions)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, errTooManySubs) {
			status = http.StatusBadRequest
		}
		return &wsconn.HTTPError{Status: status, Reason: err.Error()}
	}
	// Queued now, sent after the 101 (which goes to the front).
	if positions {
		c.SendReply(protocol.AppendSubscribed(make([]byte, 0, 256), subStates(js)))
	}
	release(c, js)
	return nil
}

// queryStreams reads what the upgrade's query subscribes to: the user's
// stream first (when the token has a sub), then the topics of "topics", and
// the positions of "since", each checked against the token.
func queryStreams(q url.Values, cl *claims) ([]string, map[string]engine.Position, *wsconn.HTTPError) {
	var names []string
	user, ok := userStream(cl)
	if !ok {
		return nil, nil, &wsconn.HTTPError{Status: http.StatusUnauthorized, Reason: "token sub must be 1-127 bytes of [A-Za-z0-9_.:@-]"}
	}
	if user != "" {
		names = append(names, user)
	}
	for _, v := range q["topics"] {
		for _, name := range strings.Split(v, ",") {
			if !protocol.ValidTopic(name) {
				return nil, nil, &wsconn.HTTPError{Status: http.StatusBadRequest, Reason: "bad topic: names are 1-128 bytes of [A-Za-z0-9_.:-]"}
			}
			if cl != nil && !cl.allows(name) {
				return nil, nil, &wsconn.HTTPError{Status: http.StatusForbidden, Reason: "topic not allowed by the token: " + name}
			}
			names = append(names, name)
		}
	}
	since, err := protocol.ParseSince(q.Get("since"))
	if err != nil {
		return nil, nil, &wsconn.HTTPError{Status: http.StatusBadRequest, Reason: "bad since: " + err.Error()}
	}
	for topic := range since {
		if !slices.Contains(names, topic) {
			return nil, nil, &wsconn.HTTPError{Status: http.StatusBadRequest, Reason: "since names a topic that is not in topics: " + topic}
		}
	}
	return names, since, nil
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

// OnClose implements wsconn.Handler: every subscription and the per-IP
// place go. It runs after every other callback of the connection, Accept
// included.
func (h *handler) OnClose(c *wsconn.Conn, cause error) {
	ss, _ := c.Value().(*session)
	if ss == nil {
		return
	}
	for _, t := range ss.topics {
		t.Unsubscribe(c)
	}
	ss.topics = nil
	if ss.counted != nil {
		h.srv().ips.release(*ss.counted)
		ss.counted = nil
	}
}

// OnMessage implements wsconn.Handler: one protocol v1 command per text
// message. Every message counts against the command rate, malformed ones
// too; a command with an id gets exactly one reply.
func (h *handler) OnMessage(c *wsconn.Conn, op ws.OpCode, p []byte) {
	s := h.srv()
	if op != ws.OpText {
		c.CloseWith(ws.StatusUnsupportedData, "commands are text frames")
		return
	}
	ss, _ := c.Value().(*session)
	if ss == nil {
		return
	}
	cmd, err := protocol.ParseCommand(p)
	var ce *protocol.CommandError
	if err != nil && !errors.As(err, &ce) {
		ce = &protocol.CommandError{Code: protocol.CodeInternal, Message: "internal error"}
	}
	if r := s.cfg.Limits.CommandRate; r > 0 {
		if ss.lim == nil {
			ss.lim = rate.NewLimiter(rate.Limit(r), max(1, int(2*r)))
		}
		if !ss.lim.Allow() {
			hasID, id := cmd.HasID, cmd.ID
			if ce != nil {
				hasID, id = ce.HasID, ce.ID
			}
			replyError(c, hasID, id, protocol.CodeLimit, "too many commands")
			return
		}
	}
	if ce != nil {
		replyError(c, ce.HasID, ce.ID, ce.Code, ce.Message)
		return
	}
	code, msg, js := s.runCommand(ss, c, &cmd)
	switch {
	case code != "":
		replyError(c, cmd.HasID, cmd.ID, code, msg)
	case cmd.HasID && cmd.Op == protocol.OpSubscribe:
		c.SendReply(protocol.AppendSubscribeAck(make([]byte, 0, 256), cmd.ID, subStates(js)))
	case cmd.HasID:
		replyAck(c, cmd.ID)
	}
	release(c, js) // after the reply: recovered messages, then live ones
}

// runCommand carries out a parsed command and returns the error code and
// message of its one reply, or "" for success, and for a subscribe the
// topics joined (held until release).
func (s *Server) runCommand(ss *session, c *wsconn.Conn, cmd *protocol.Command) (code, msg string, js []joined) {
	if ss.claims != nil {
		denied := cmd.Topic != "" && !ss.claims.allows(cmd.Topic)
		for _, name := range cmd.Topics {
			denied = denied || (cmd.Op == protocol.OpSubscribe && !ss.claims.allows(name))
		}
		if denied {
			return protocol.CodeForbidden, "topic not allowed by the token", nil
		}
	}
	switch cmd.Op {
	case protocol.OpSubscribe:
		ctx, cancel := s.engineContext()
		defer cancel()
		js, err := s.subscribeAll(ctx, ss, c, cmd.Topics, cmd.Since, cmd.HasID)
		if err != nil {
			return errorCode(err), err.Error(), nil
		}
		return "", "", js
	case protocol.OpUnsubscribe:
		for _, name := range cmd.Topics {
			unsubscribe(ss, c, name)
		}
	case protocol.OpPublish:
		if !s.cfg.ClientPublish {
			return protocol.CodeDisabled, "client publish is disabled on this server", nil
		}
		// The reply follows the publish, so it can say how it went: a
		// publisher subscribed to the topic sees its own delivery first.
		if _, err := s.publish(cmd.Topic, cmd.Data); err != nil {
			return errorCode(err), err.Error(), nil
		}
	}
	return "", "", nil
}

// errorCode is the reply code for a failed subscribe or publish: a limit,
// or the engine failing (internal: the client may retry).
func errorCode(err error) string {
	if errors.Is(err, errTooManySubs) || errors.Is(err, hub.ErrTooManyTopics) || errors.Is(err, engine.ErrTooManyTopics) {
		return protocol.CodeLimit
	}
	return protocol.CodeInternal
}

func replyAck(c *wsconn.Conn, id int64) {
	var b [64]byte
	c.SendReply(protocol.AppendAck(b[:0], id))
}

func replyError(c *wsconn.Conn, hasID bool, id int64, code, msg string) {
	var b [256]byte
	c.SendReply(protocol.AppendError(b[:0], hasID, id, code, msg))
}

// Static implements wsconn.StaticHandler: the browser client at
// GET /wspush.js on the WebSocket listener, and with Config.Demo the demo
// page at GET /.
func (h *handler) Static(path []byte) (string, []byte, bool) {
	switch {
	case string(path) == js.Path:
		return js.ContentType, js.Source(), true
	case string(path) == js.DemoPath && h.cfg.Demo:
		return js.DemoContentType, js.Demo(), true
	}
	return "", nil, false
}
