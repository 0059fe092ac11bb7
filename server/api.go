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

// handlePublish is POST /api/publish: {"topic":"a","data":<JSON>} →
// {"seq":N,"epoch":"E","recipients":N}.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	// The body limit is the client message limit, as documented.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.ws.Config().MaxMessage)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeAPIError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "body over the message size limit")
			return
		}
		writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, "could not read body")
		return
	}
	req, err := protocol.ParsePublish(body)
	if err != nil {
		var ce *protocol.CommandError
		if errors.As(err, &ce) {
			writeAPIError(w, http.StatusBadRequest, ce.Code, ce.Message)
			return
		}
		writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	res, err := s.publish(req.Topic, req.Data)
	if err != nil {
		s.metrics.apiPublishErrs.Add(1)
		writeAPIError(w, http.StatusServiceUnavailable, errorCode(err), err.Error())
		return
	}
	var b [128]byte
	out := append(protocol.AppendPublishAnswer(b[:0], res.Seq, res.Epoch, res.Recipients), '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// publish sends data to a topic through the hub and counts it.
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
