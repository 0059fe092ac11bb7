package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/wspush/wspush/engine"
)

// Op names a client command.
type Op uint8

// The commands of protocol v1.
const (
	OpSubscribe   Op = iota + 1 // {"op":"subscribe","topics":[...]}; v1.1: "since":{...}
	OpUnsubscribe               // {"op":"unsubscribe","topics":[...]}
	OpPublish                   // {"op":"publish","topic":"a","data":...}
)

// String returns the op's wire name.
func (o Op) String() string {
	switch o {
	case OpSubscribe:
		return "subscribe"
	case OpUnsubscribe:
		return "unsubscribe"
	case OpPublish:
		return "publish"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Command is one parsed client command. Slices alias the input where the
// JSON allowed it, so a Command is only valid while the input buffer is.
type Command struct {
	Op     Op
	HasID  bool     // the command carried an "id"
	ID     int64    // valid when HasID; 0 is a valid id
	Topics []string // subscribe, unsubscribe: validated names
	Topic  string   // publish: validated name
	Data   []byte   // publish: the raw JSON value, exactly as sent
	// Since (protocol v1.1, subscribe only) is the position the client
	// holds for each topic it asks to recover: nil when the command had no
	// "since" (or "since":null), empty when it was {}. Every key is one of
	// Topics. len(Since) == 0 means no recovery.
	Since map[string]engine.Position
}

// msgDataNotUTF8 refuses publish data with bytes that are not UTF-8 inside
// a JSON string: encoding/json does not check them (a RawMessage keeps the
// bytes as sent), but a delivery is a text frame, and a browser closes the
// connection with 1007 on invalid UTF-8.
const msgDataNotUTF8 = "data is not valid UTF-8"

// wireCommand is the JSON shape of every command.
type wireCommand struct {
	Op     *string         `json:"op"`
	ID     json.RawMessage `json:"id"`
	Topics []string        `json:"topics"`
	Topic  *string         `json:"topic"`
	Data   json.RawMessage `json:"data"`
	Since  json.RawMessage `json:"since"` // v1.1; parsed by parseSinceJSON
}

// ParseCommand parses one command frame. On failure it returns a
// *CommandError carrying the code for the reply and the id if one was read.
// A publish's data must be valid UTF-8 (CodeBadRequest otherwise), so that
// every delivery is valid text. A subscribe may carry (protocol v1.1)
// "since":{"topic":{"epoch":"E","seq":12},...}: each topic must be one of
// the command's topics, each epoch valid (engine.ValidEpoch) and each seq a
// JSON integer in the uint64 range; any other since, or a since on another
// op, is CodeBadRequest.
func ParseCommand(b []byte) (Command, error) {
	var w wireCommand
	b = trimJSONSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Command{}, &CommandError{Code: CodeBadJSON, Message: "a command is one JSON object", Err: ErrBadJSON}
	}
	if err := json.Unmarshal(b, &w); err != nil {
		// A well-formed object whose fields have the wrong types still tells
		// us the id, so the reply can carry it.
		if json.Valid(b) {
			cerr := &CommandError{Code: CodeBadRequest, Message: "a field has the wrong type", Err: ErrBadRequest}
			var idOnly struct {
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(b, &idOnly) == nil {
				cerr.HasID, cerr.ID, _ = parseID(idOnly.ID)
			}
			return Command{}, cerr
		}
		return Command{}, &CommandError{Code: CodeBadJSON, Message: "invalid JSON", Err: ErrBadJSON}
	}
	var cmd Command
	hasID, id, ok := parseID(w.ID)
	if !ok {
		return Command{}, &CommandError{Code: CodeBadRequest, Message: "id must be an integer", Err: ErrBadRequest}
	}
	cmd.HasID, cmd.ID = hasID, id
	fail := func(code, msg string, err error) (Command, error) {
		return Command{}, &CommandError{Code: code, Message: msg, HasID: hasID, ID: id, Err: err}
	}
	if w.Op == nil {
		return fail(CodeUnknownOp, "missing op", ErrUnknownOp)
	}
	if code, msg, err := w.fill(&cmd); err != nil {
		return fail(code, msg, err)
	}
	return cmd, nil
}

// fill checks the fields of w's op and sets them in cmd. On failure it
// returns the reply's code and message and the sentinel error.
func (w *wireCommand) fill(cmd *Command) (code, msg string, err error) {
	switch *w.Op {
	case "subscribe", "unsubscribe":
		cmd.Op = OpSubscribe
		if *w.Op == "unsubscribe" {
			cmd.Op = OpUnsubscribe
		}
		if len(w.Topics) == 0 {
			return CodeBadRequest, "topics must be a non-empty array of names", ErrBadRequest
		}
		for _, t := range w.Topics {
			if !ValidTopic(t) {
				return CodeBadTopic, "topic names are 1-128 bytes of [A-Za-z0-9_.:-]", ErrBadTopic
			}
		}
		cmd.Topics = w.Topics
		if cmd.Op == OpSubscribe {
			since, msg := parseSinceJSON(w.Since, w.Topics)
			if msg != "" {
				return CodeBadRequest, msg, ErrBadRequest
			}
			cmd.Since = since
		}
	case "publish":
		cmd.Op = OpPublish
		switch {
		case w.Topic == nil:
			return CodeBadRequest, "publish needs a topic", ErrBadRequest
		case !ValidTopic(*w.Topic):
			return CodeBadTopic, "topic names are 1-128 bytes of [A-Za-z0-9_.:-]", ErrBadTopic
		case len(w.Data) == 0:
			return CodeBadRequest, "publish needs data", ErrBadRequest
		case !utf8.Valid(w.Data):
			return CodeBadRequest, msgDataNotUTF8, ErrBadRequest
		}
		cmd.Topic, cmd.Data = *w.Topic, w.Data
	default:
		return CodeUnknownOp, "unknown op", ErrUnknownOp
	}
	if cmd.Op != OpSubscribe && !isAbsent(w.Since) {
		return CodeBadRequest, "since is only allowed on subscribe", ErrBadRequest
	}
	return "", "", nil
}

// trimJSONSpace trims the white space JSON allows (RFC 8259: space, tab,
// line feed, carriage return) and nothing else.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// isAbsent reports whether an optional field was left out or sent as null.
func isAbsent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// parseID reads an optional integer id. absent (or null) → hasID false.
func parseID(raw json.RawMessage) (hasID bool, id int64, ok bool) {
	if isAbsent(raw) {
		return false, 0, true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return false, 0, false
	}
	return true, n, true
}
