package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/wspush/wspush/engine"
)

// Messages of the recovery positions' errors (protocol v1.1).
const (
	msgSinceShape = `since must be an object of {"epoch":"E","seq":N} by topic`
	msgEntryShape = `must be {"epoch":"E","seq":N}`
	msgEpoch      = "epoch must be 1-32 characters of [A-Za-z0-9_-]"
	msgSeq        = "seq must be an integer from 0 to 18446744073709551615"
	msgItemShape  = "want topic:epoch:seq"
	msgTopicName  = "topic names are 1-128 bytes of [A-Za-z0-9_.:-] (a user's stream is @ and the user id)"
)

// parseSinceJSON parses a subscribe's "since" member: nil for absent or
// null, else a map with an entry per topic. On failure it returns the
// reply's message (the code is always bad_request). The topics are checked
// in sorted order, so the message is the same for the same input.
func parseSinceJSON(raw json.RawMessage, topics []string) (map[string]engine.Position, string) {
	if isAbsent(raw) {
		return nil, ""
	}
	var entries map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &entries) != nil {
		return nil, msgSinceShape
	}
	since := make(map[string]engine.Position, len(entries))
	if len(entries) == 0 {
		return since, ""
	}
	subscribed := make(map[string]struct{}, len(topics))
	for _, t := range topics {
		subscribed[t] = struct{}{}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, topic := range keys {
		if _, ok := subscribed[topic]; !ok {
			if !ValidTopic(topic) {
				return nil, "since names a topic that is not in topics (and not a valid name)"
			}
			return nil, "since names " + strconv.Quote(topic) + ", which is not in topics"
		}
		pos, msg := parseSinceEntry(entries[topic])
		if msg != "" {
			return nil, "since " + strconv.Quote(topic) + ": " + msg
		}
		since[topic] = pos
	}
	return since, ""
}

// parseSinceEntry parses one {"epoch":"E","seq":N} of a since object. On
// failure it returns what is wrong.
func parseSinceEntry(raw json.RawMessage) (engine.Position, string) {
	var w struct {
		Epoch json.RawMessage `json:"epoch"`
		Seq   json.RawMessage `json:"seq"`
	}
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &w) != nil {
		return engine.Position{}, msgEntryShape
	}
	if isAbsent(w.Epoch) {
		return engine.Position{}, "epoch is missing"
	}
	var epoch string
	if json.Unmarshal(w.Epoch, &epoch) != nil || !engine.ValidEpoch(epoch) {
		return engine.Position{}, msgEpoch
	}
	if isAbsent(w.Seq) {
		return engine.Position{}, "seq is missing"
	}
	// ParseUint takes digits only: no sign, fraction, exponent or quotes.
	seq, err := strconv.ParseUint(string(w.Seq), 10, 64)
	if err != nil {
		return engine.Position{}, msgSeq
	}
	return engine.Position{Epoch: epoch, Seq: seq}, ""
}

// ParseSince parses the since query parameter of GET /ws (protocol v1.1),
// already URL-decoded: a comma-separated list of topic:epoch:seq. Each item
// is split at its last two colons, so a topic may contain colons (an epoch
// never does); the topic must be a topic name (ValidTopic) or a user's
// stream name ("@" and a ValidUser id), the epoch
// engine.ValidEpoch, and seq is a uint64 in decimal digits without sign
// (leading zeros are allowed). The empty string gives nil (no position,
// and nothing allocated for the many connections that resume nothing). An
// empty item or a topic named twice is an error.
//
// Every error is a *CommandError with Code CodeBadRequest (also for a bad
// topic name), no id, and a Message naming the item (1-based) and what is
// wrong; it wraps ErrBadRequest. On error the map is nil.
func ParseSince(s string) (map[string]engine.Position, error) {
	if s == "" {
		return nil, nil
	}
	since := make(map[string]engine.Position)
	n := 0
	for item := range strings.SplitSeq(s, ",") {
		n++
		topic, pos, msg := parseSinceItem(item)
		if msg == "" {
			if _, dup := since[topic]; dup {
				msg = "topic " + strconv.Quote(topic) + " is named twice"
			}
		}
		if msg != "" {
			return nil, &CommandError{Code: CodeBadRequest, Message: "since item " + strconv.Itoa(n) + ": " + msg, Err: ErrBadRequest}
		}
		since[topic] = pos
	}
	return since, nil
}

// parseSinceItem parses one topic:epoch:seq. On failure it returns what is
// wrong.
func parseSinceItem(item string) (topic string, pos engine.Position, msg string) {
	j := strings.LastIndexByte(item, ':')
	if j < 0 {
		return "", pos, msgItemShape
	}
	k := strings.LastIndexByte(item[:j], ':')
	if k < 0 {
		return "", pos, msgItemShape
	}
	topic, epoch, seqText := item[:k], item[k+1:j], item[j+1:]
	if !validStream(topic) {
		return "", pos, msgTopicName
	}
	if !engine.ValidEpoch(epoch) {
		return "", pos, msgEpoch
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return "", pos, msgSeq
	}
	return topic, engine.Position{Epoch: epoch, Seq: seq}, ""
}
