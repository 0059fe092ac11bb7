package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wspush/wspush/hub"
	"github.com/wspush/wspush/protocol"
)

// apiHandler routes the API listener.
func (s *Server) apiHandler() http.Handler {
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok "+s.cfg.NodeName+"\n")
	})
	root.HandleFunc("GET /readyz", s.handleReady)
	// Everything but the probes needs the API key when one is set.
	mux := http.NewServeMux()
	root.Handle("/", s.requireAPIKey(mux))
	mux.HandleFunc("POST /api/publish", s.handlePublish)
	mux.HandleFunc("POST /api/disconnect", s.handleDisconnect)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return root
}

// requireAPIKey checks "Authorization: apikey <key>" in constant time when
// an API key is configured.
func (s *Server) requireAPIKey(next http.Handler) http.Handler {
	if s.cfg.APIKey == "" {
		return next
	}
	want := []byte("apikey " + s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeAPIError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "missing or wrong API key")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.shutting.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if err := s.engineHealth(); err != nil {
		http.Error(w, "broker unavailable: "+err.Error()+"; publishes fail until it is back", http.StatusServiceUnavailable)
		return
	}
	if s.memory.over.Load() {
		http.Error(w, "memory budget exceeded: using "+strconv.FormatInt(s.memory.lastUse.Load(), 10)+
			" of "+strconv.FormatInt(s.cfg.Limits.MaxMemory, 10)+" bytes; new connections are refused", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// handlePublish is POST /api/publish: {"topic":"a","data":<JSON>} or
// {"user":"42","data":...} → {"seq":N,"epoch":"E","recipients":N};
// {"topics":["a","b"],"data":...} → {"results":[...]}, one per topic.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, s.ws.Config().MaxMessage)
	if !ok {
		return
	}
	req, err := protocol.ParsePublish(body)
	if err != nil {
		writeParseError(w, err)
		return
	}
	if req.Topics != nil {
		s.publishMany(w, req.Topics, req.Data)
		return
	}
	res, err := s.publish(req.Streams()[0], req.Data)
	if err != nil {
		s.metrics.apiPublishErrs.Add(1)
		writeAPIError(w, http.StatusServiceUnavailable, errorCode(err), err.Error())
		return
	}
	var b [128]byte
	writeJSON(w, http.StatusOK, protocol.AppendPublishAnswer(b[:0], res.Seq, res.Epoch, res.Recipients))
}

// publishMany publishes data to each topic in turn and answers every
// result: 200 when all went through, else 503 (the body says which did).
func (s *Server) publishMany(w http.ResponseWriter, topics []string, data []byte) {
	rs := make([]protocol.PublishResult, len(topics))
	status := http.StatusOK
	for i, topic := range topics {
		rs[i].Topic = topic
		res, err := s.publish(topic, data)
		if err != nil {
			s.metrics.apiPublishErrs.Add(1)
			rs[i].Code, rs[i].Message = errorCode(err), err.Error()
			status = http.StatusServiceUnavailable
			continue
		}
		rs[i].Seq, rs[i].Epoch, rs[i].Recipients = res.Seq, res.Epoch, res.Recipients
	}
	writeJSON(w, status, protocol.AppendPublishResults(make([]byte, 0, 64*len(rs)), rs))
}

// handleDisconnect is POST /api/disconnect: {"user":"42"} → {"closed":N},
// the connections this node closed; the other nodes close theirs.
func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, s.ws.Config().MaxMessage)
	if !ok {
		return
	}
	user, err := protocol.ParseDisconnect(body)
	if err != nil {
		writeParseError(w, err)
		return
	}
	n, err := s.disconnect(user)
	if err != nil {
		writeAPIError(w, http.StatusServiceUnavailable, protocol.CodeInternal,
			"closed "+strconv.Itoa(n)+" connections on this node; the other nodes were not told: "+err.Error())
		return
	}
	var b [32]byte
	writeJSON(w, http.StatusOK, protocol.AppendDisconnectAnswer(b[:0], n))
}

// readBody reads an API request body of at most limit bytes (the client
// message limit, as documented), or answers the error and returns false.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeAPIError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "body over the message size limit")
			return nil, false
		}
		writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, "could not read body")
		return nil, false
	}
	return body, true
}

// writeParseError answers 400 with a request parser's error.
func writeParseError(w http.ResponseWriter, err error) {
	var ce *protocol.CommandError
	if errors.As(err, &ce) {
		writeAPIError(w, http.StatusBadRequest, ce.Code, ce.Message)
		return
	}
	writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
}

// writeJSON answers status with body and a trailing newline.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// publish sends data to a topic or user's stream through the hub and
// counts it.
func (s *Server) publish(topic string, data []byte) (hub.Result, error) {
	start := time.Now()
	ctx, cancel := s.engineContext()
	defer cancel()
	res, err := s.hub.PublishContext(ctx, topic, data)
	if err != nil {
		return res, err
	}
	s.metrics.fanoutSeconds.Observe(time.Since(start).Seconds())
	s.metrics.published.Add(1)
	s.metrics.recipients.Add(int64(res.Recipients))
	return res, nil
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
}
