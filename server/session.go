package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

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
}

// subscribeLocked adds the connection to a topic once. s.mu must be held.
func (s *Server) subscribeLocked(ss *session, c *wsconn.Conn, name string) error {
	for _, t := range ss.topics {
		if t.Name() == name {
			return nil
		}
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

// Accept implements wsconn.Handler: path, Origin and topics are checked,
// then the query's subscriptions are made, all before the 101.
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
	var names []string
	if q, ok := u.Query()["topics"]; ok {
		for _, v := range q {
			for _, name := range strings.Split(v, ",") {
				if !protocol.ValidTopic(name) {
					return &wsconn.HTTPError{Status: http.StatusBadRequest, Reason: "bad topic: names are 1-128 bytes of [A-Za-z0-9_.:-]"}
				}
				names = append(names, name)
			}
		}
	}
	ss := &session{}
	c.SetValue(ss)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, name := range names {
		if err := s.subscribeLocked(ss, c, name); err != nil {
			return &wsconn.HTTPError{Status: http.StatusServiceUnavailable, Reason: err.Error()}
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
	ss.mu.Unlock()
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
