package wsconn

import (
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"
)

// Errors callers branch on.
var (
	// ErrClosed is returned for operations on a closed connection or server.
	ErrClosed = errors.New("wsconn: closed")
	// ErrBadConfig wraps an invalid configuration value.
	ErrBadConfig = errors.New("wsconn: bad config")
	// ErrSlowConsumer is the close cause of a connection that fell too far
	// behind.
	ErrSlowConsumer = errors.New("wsconn: slow consumer")
	// ErrIdle is the close cause of a connection silent past the idle
	// timeout.
	ErrIdle = errors.New("wsconn: idle timeout")
	// ErrReadTimeout is the close cause of a client message that did not
	// complete within Config.ReadTimeout of its first byte.
	ErrReadTimeout = errors.New("wsconn: read timeout")
	// ErrHandshakeTimeout is the close cause of an upgrade that took too long.
	ErrHandshakeTimeout = errors.New("wsconn: handshake timeout")
	// ErrShutdown is the close cause during server shutdown.
	ErrShutdown = errors.New("wsconn: server shutting down")
)

// errWouldBlock is a flusher's write that found the socket full (the rest
// goes to a writer goroutine).
var errWouldBlock = errors.New("wsconn: socket full")

// errEOF is the read side's end of stream.
var errEOF = io.EOF

// HTTPError refuses an upgrade with an HTTP status before any WebSocket
// traffic. Handler.Accept returns it.
type HTTPError struct {
	Status int    // HTTP status code, e.g. 400, 403, 503
	Reason string // the reason, sent as the response body and counted by metrics
}

// Error describes the refusal with its status and reason.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("wsconn: refused with %d: %s", e.Status, e.Reason)
}

// CloseError is a connection's close cause when a close frame was exchanged
// or the server closed it with a code.
type CloseError struct {
	Code   ws.StatusCode // the close code sent or received
	Reason string        // the close reason
	Remote bool          // the peer sent the close first
	Err    error         // the sentinel behind a server close (ErrIdle, ErrSlowConsumer, ErrShutdown), if any
}

// Unwrap returns the sentinel behind the close, for errors.Is.
func (e *CloseError) Unwrap() error { return e.Err }

// Error says who closed and with which code and reason.
func (e *CloseError) Error() string {
	who := "server"
	if e.Remote {
		who = "peer"
	}
	return fmt.Sprintf("wsconn: closed by %s with %d %q", who, e.Code, e.Reason)
}
