package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// MaxPublishTopics is the most topics one POST /api/publish may name.
const MaxPublishTopics = 1000

// Messages of the API requests' errors.
const (
	msgOneTarget   = `name exactly one of "topic", "topics" or "user"`
	msgBadTopic    = "topic names are 1-128 bytes of [A-Za-z0-9_.:-]"
	msgBadUser     = "user ids are 1-127 bytes of [A-Za-z0-9_.:@-]"
	msgTopicsCount = "topics must name 1 to 1000 topics"
)

// PublishRequest is the body of POST /api/publish. Exactly one of Topic,
// Topics and User is set.
type PublishRequest struct {
	Topic  string   // one topic, a valid name
	Topics []string // several topics, valid and distinct names
	User   string   // a user id (ValidUser): the stream UserStream(User)
	Data   []byte   // the raw JSON value, exactly as sent
}

// Streams returns the stream names the request publishes to, in order.
func (r *PublishRequest) Streams() []string {
	switch {
	case r.User != "":
		return []string{UserStream(r.User)}
	case r.Topics != nil:
		return r.Topics
	}
	return []string{r.Topic}
}

// ParsePublish parses and validates a POST /api/publish body:
// {"topic":"a","data":<any JSON>}, {"topics":["a","b"],"data":...} or
// {"user":"42","data":...}. data must be valid UTF-8 (ErrBadRequest
// otherwise). Errors wrap ErrBadJSON, ErrBadTopic or ErrBadRequest.
func ParsePublish(b []byte) (PublishRequest, error) {
	var w struct {
		Topic  *string         `json:"topic"`
		Topics []string        `json:"topics"`
		User   *string         `json:"user"`
		Data   json.RawMessage `json:"data"`
	}
	if cerr := decodeBody(b, &w); cerr != nil {
		return PublishRequest{}, cerr
	}
	fail := func(code, msg string, err error) (PublishRequest, error) {
		return PublishRequest{}, &CommandError{Code: code, Message: msg, Err: err}
	}
	var req PublishRequest
	if targets(w.Topic != nil, w.Topics != nil, w.User != nil) != 1 {
		return fail(CodeBadRequest, msgOneTarget, ErrBadRequest)
	}
	switch {
	case w.Topic != nil:
		if !ValidTopic(*w.Topic) {
			return fail(CodeBadTopic, msgBadTopic, ErrBadTopic)
		}
		req.Topic = *w.Topic
	case w.User != nil:
		if !ValidUser(*w.User) {
			return fail(CodeBadRequest, msgBadUser, ErrBadRequest)
		}
		req.User = *w.User
	default:
		if code, msg, err := checkTopics(w.Topics); err != nil {
			return fail(code, msg, err)
		}
		req.Topics = w.Topics
	}
	if len(w.Data) == 0 {
		return fail(CodeBadRequest, "data is required", ErrBadRequest)
	}
	if !utf8.Valid(w.Data) {
		return fail(CodeBadRequest, msgDataNotUTF8, ErrBadRequest)
	}
	req.Data = w.Data
	return req, nil
}

// targets counts the set flags.
func targets(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// checkTopics validates a publish's "topics": 1 to MaxPublishTopics valid,
// distinct names.
func checkTopics(topics []string) (code, msg string, err error) {
	if len(topics) == 0 || len(topics) > MaxPublishTopics {
		return CodeBadRequest, msgTopicsCount, ErrBadRequest
	}
	seen := make(map[string]struct{}, len(topics))
	for _, t := range topics {
		if !ValidTopic(t) {
			return CodeBadTopic, msgBadTopic, ErrBadTopic
		}
		if _, dup := seen[t]; dup {
			return CodeBadRequest, "topic " + strconv.Quote(t) + " is named twice", ErrBadRequest
		}
		seen[t] = struct{}{}
	}
	return "", "", nil
}

// ParseDisconnect parses and validates a POST /api/disconnect body,
// {"user":"42"}, and returns the user id. Errors wrap ErrBadJSON or
// ErrBadRequest.
func ParseDisconnect(b []byte) (string, error) {
	var w struct {
		User *string `json:"user"`
	}
	if cerr := decodeBody(b, &w); cerr != nil {
		return "", cerr
	}
	if w.User == nil || !ValidUser(*w.User) {
		return "", &CommandError{Code: CodeBadRequest, Message: msgBadUser, Err: ErrBadRequest}
	}
	return *w.User, nil
}

// decodeBody decodes an API request body, one JSON object, into w.
func decodeBody(b []byte, w any) *CommandError {
	b = trimJSONSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return &CommandError{Code: CodeBadJSON, Message: "the body is one JSON object", Err: ErrBadJSON}
	}
	if err := json.Unmarshal(b, w); err != nil {
		if json.Valid(b) {
			return &CommandError{Code: CodeBadRequest, Message: "a field has the wrong type", Err: ErrBadRequest}
		}
		return &CommandError{Code: CodeBadJSON, Message: "invalid JSON", Err: ErrBadJSON}
	}
	return nil
}

// PublishResult is how the publish to one topic of a multi-topic POST
// /api/publish went: Seq, Epoch and Recipients when Code is empty, else the
// error's Code and Message.
type PublishResult struct {
	Topic         string
	Seq           uint64
	Epoch         string
	Recipients    int
	Code, Message string
}

// AppendDisconnectAnswer appends the 200 body of POST /api/disconnect,
// {"closed":N}: the connections the answering node closed.
func AppendDisconnectAnswer(dst []byte, closed int) []byte {
	dst = append(dst, `{"closed":`...)
	dst = strconv.AppendInt(dst, int64(closed), 10)
	return append(dst, '}')
}

// AppendPublishResults appends the answer of a multi-topic POST
// /api/publish, one result per topic in the request's order:
//
//	{"results":[{"topic":"a","seq":17,"epoch":"E","recipients":3},{"topic":"b","error":"limit","message":"..."}]}
//
// without a trailing newline. Topics must be valid names and epochs valid
// epochs.
func AppendPublishResults(dst []byte, rs []PublishResult) []byte {
	dst = append(dst, `{"results":[`...)
	for i := range rs {
		r := &rs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"topic":"`...)
		dst = append(dst, r.Topic...)
		if r.Code != "" {
			dst = append(dst, `","error":`...)
			dst = appendJSONString(dst, r.Code)
			dst = append(dst, `,"message":`...)
			dst = appendJSONString(dst, r.Message)
			dst = append(dst, '}')
			continue
		}
		dst = append(dst, `","seq":`...)
		dst = strconv.AppendUint(dst, r.Seq, 10)
		dst = append(dst, `,"epoch":"`...)
		dst = append(dst, r.Epoch...)
		dst = append(dst, `","recipients":`...)
		dst = strconv.AppendInt(dst, int64(r.Recipients), 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}
