package server

import (
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
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/publish", s.handlePublish)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.shutting.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// handlePublish is POST /api/publish: {"topic":"a","data":<JSON>} →
// {"seq":N,"recipients":N}.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.ws.Config().MaxMessage)+1024))
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
		writeAPIError(w, http.StatusServiceUnavailable, protocol.CodeLimit, err.Error())
		return
	}
	var b [64]byte
	out := append(b[:0], `{"seq":`...)
	out = strconv.AppendUint(out, res.Seq, 10)
	out = append(out, `,"recipients":`...)
	out = strconv.AppendInt(out, int64(res.Recipients), 10)
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// publish sends data to a topic through the hub and counts it.
func (s *Server) publish(topic string, data []byte) (hub.Result, error) {
	start := time.Now()
	res, err := s.hub.Publish(topic, data)
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
