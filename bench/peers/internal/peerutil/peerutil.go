// Package peerutil holds the protocol pieces shared by the benchmark peers:
// the main wrapper, flag wiring, topic validation, the message encoding, the stdout LISTEN
// line and the HTTP publish API. Nothing here is on a peer's per-delivery
// path except AppendMessage, which runs once per publish.
package peerutil

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main runs a peer: run gets the command-line arguments and a context that
// ends on SIGINT or SIGTERM; an error from it is printed after the peer's
// name and exits 1.
func Main(name string, run func(ctx context.Context, args []string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Default listen addresses shared by all peers.
const (
	DefaultListen    = "127.0.0.1:9080"
	DefaultAPIListen = "127.0.0.1:9081"

	// MaxTopicLen is the longest accepted topic name in bytes.
	MaxTopicLen = 128

	// DefaultMaxBody caps a publish request body.
	DefaultMaxBody = 16 << 20
)

// Addrs holds the two listen addresses every peer takes.
type Addrs struct {
	WS  string
	API string
}

// Register adds -listen and -api-listen to fs.
func (a *Addrs) Register(fs *flag.FlagSet) {
	fs.StringVar(&a.WS, "listen", DefaultListen, "WebSocket listen address (host:port, port 0 picks a free port)")
	fs.StringVar(&a.API, "api-listen", DefaultAPIListen, "HTTP API listen address (host:port, port 0 picks a free port)")
}

// Announce writes the single stdout line a harness waits for:
//
//	LISTEN ws=<host:port> api=<host:port>
func Announce(w io.Writer, ws, api string) error {
	_, err := fmt.Fprintf(w, "LISTEN ws=%s api=%s\n", ws, api)
	return err
}

// ValidTopic reports whether s is 1-128 bytes of [A-Za-z0-9_.:-].
func ValidTopic(s string) bool {
	if len(s) == 0 || len(s) > MaxTopicLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ErrBadTopics is returned by ParseTopics for a missing or invalid list.
var ErrBadTopics = errors.New("topics must be a comma-separated list of 1-128 bytes of [A-Za-z0-9_.:-]")

// ParseTopics splits the (already URL-decoded) value of the topics query
// parameter on commas, validates every name and drops duplicates.
func ParseTopics(raw string) ([]string, error) {
	if raw == "" {
		return nil, ErrBadTopics
	}
	parts := strings.Split(raw, ",")
	out := parts[:0]
	for _, p := range parts {
		if !ValidTopic(p) {
			return nil, ErrBadTopics
		}
		dup := false
		for _, q := range out {
			if q == p {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out, nil
}

// TopicsFromRequest parses the topics query parameter of an upgrade request.
func TopicsFromRequest(r *http.Request) ([]string, error) {
	return ParseTopics(r.URL.Query().Get("topics"))
}

// MessageLen is len(AppendMessage(nil, topic, seq, data)).
func MessageLen(topic string, seq uint64, data []byte) int {
	n := 1
	for v := seq; v >= 10; v /= 10 {
		n++
	}
	return len(`{"topic":"`) + len(topic) + len(`","seq":`) + n + len(`,"data":`) + len(data) + len(`}`)
}

// AppendMessage appends the delivery JSON
//
//	{"topic":"<topic>","seq":<seq>,"data":<data>}
//
// to dst. topic must satisfy ValidTopic (so it needs no escaping) and data
// must be valid JSON; data is copied verbatim, never re-encoded.
func AppendMessage(dst []byte, topic string, seq uint64, data []byte) []byte {
	dst = append(dst, `{"topic":"`...)
	dst = append(dst, topic...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// Publisher is implemented by each peer's fan-out core.
type Publisher interface {
	// Publish assigns the topic's next seq, delivers the message to the
	// topic's current subscribers and returns the seq and how many
	// subscribers the message was handed to. data is valid JSON and is not
	// retained after Publish returns.
	Publish(topic string, data []byte) (seq uint64, recipients int, err error)
}

// ErrShuttingDown may be returned by Publish while the peer stops.
var ErrShuttingDown = errors.New("shutting down")

// PublishPath is the API route for publishing.
const PublishPath = "/api/publish"

// APIHandler serves POST /api/publish for p. Bodies larger than maxBody
// (DefaultMaxBody if <= 0) are rejected with 413.
func APIHandler(p Publisher, maxBody int64) http.Handler {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PublishPath {
			WriteJSONError(w, http.StatusNotFound, "not found")
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			WriteJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				WriteJSONError(w, http.StatusRequestEntityTooLarge, "body too large")
				return
			}
			WriteJSONError(w, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}
		var req struct {
			Topic string          `json:"topic"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			WriteJSONError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
			return
		}
		if !ValidTopic(req.Topic) {
			WriteJSONError(w, http.StatusBadRequest, "bad topic: must be 1-128 bytes of [A-Za-z0-9_.:-]")
			return
		}
		if len(req.Data) == 0 || !json.Valid(req.Data) {
			WriteJSONError(w, http.StatusBadRequest, "missing or invalid data")
			return
		}
		seq, n, err := p.Publish(req.Topic, req.Data)
		if err != nil {
			WriteJSONError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		out := make([]byte, 0, 48)
		out = append(out, `{"seq":`...)
		out = strconv.AppendUint(out, seq, 10)
		out = append(out, `,"recipients":`...)
		out = strconv.AppendInt(out, int64(n), 10)
		out = append(out, "}\n"...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}

// WriteJSONError writes {"error":msg} with the given status.
func WriteJSONError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Server is a plain net/http server on an already bound listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
	err chan error
}

// Listen binds addr and returns an unstarted Server for h.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{
		ln:  ln,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		err: make(chan error, 1),
	}, nil
}

// Addr is the bound host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Start serves in a new goroutine.
func (s *Server) Start() {
	go func() {
		err := s.srv.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.err <- err
	}()
}

// Close stops accepting, waits up to timeout for in-flight requests and
// returns Serve's error, if any. Hijacked (WebSocket) connections are not
// touched; peers close those themselves.
func (s *Server) Close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	return <-s.err
}

// CloseListener closes a listener that was bound but never started.
func (s *Server) CloseListener() { _ = s.ln.Close() }
