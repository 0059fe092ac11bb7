package protocol

import "errors"

// Error codes sent to clients in {"op":"error","code":...}. Each is one
// lower-case word so that clients can switch on it.
const (
	CodeBadJSON      = "bad_json"     // the frame is not one JSON object
	CodeUnknownOp    = "unknown_op"   // "op" is missing or not a known command
	CodeBadTopic     = "bad_topic"    // a topic name breaks the naming rule
	CodeBadRequest   = "bad_request"  // a field is missing or of the wrong type
	CodeDisabled     = "disabled"     // the command is turned off on this server
	CodeForbidden    = "forbidden"    // the connection may not use that topic
	CodeLimit        = "limit"        // a per-connection limit was reached
	CodeInternal     = "internal"     // the server failed; the request may be retried
	CodeTooLarge     = "too_large"    // the message is over the size limit
	CodeUnauthorized = "unauthorized" // credentials are missing or wrong
)

// Sentinel errors returned by the parsers. *CommandError wraps them.
var (
	// ErrBadJSON means the input is not a single valid JSON object.
	ErrBadJSON = errors.New("protocol: bad json")
	// ErrUnknownOp means the op field is missing or unknown.
	ErrUnknownOp = errors.New("protocol: unknown op")
	// ErrBadTopic means a topic name is not 1-128 bytes of [A-Za-z0-9_.:-].
	ErrBadTopic = errors.New("protocol: bad topic")
	// ErrBadRequest means a required field is missing or mistyped.
	ErrBadRequest = errors.New("protocol: bad request")
)

// CommandError is a parse failure with what the reply needs: the client's id
// (when it could be read) and the error code word.
type CommandError struct {
	Code    string // one of the Code constants
	Message string // human-readable detail, safe to send to the client
	HasID   bool   // the command carried an id
	ID      int64  // the id, valid when HasID
	Err     error  // one of the sentinels above
}

// Error describes the failure with its code word and message.
func (e *CommandError) Error() string { return "protocol: " + e.Code + ": " + e.Message }

// Unwrap returns the sentinel, for errors.Is.
func (e *CommandError) Unwrap() error { return e.Err }
