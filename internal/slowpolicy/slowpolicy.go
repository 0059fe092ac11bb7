// Package slowpolicy names what a connection's full out queue does with one
// message: the per-topic slow-consumer policy (--topic-policy) that travels
// on each delivery's shared frame.
//
// It owns only the Policy values, their spelling and parsing. The policy is
// decided by the server (which topics get which), recorded by the hub on the
// frames of a topic it creates, carried by bpool.Frame and applied by
// wsconn's writer. It lives in its own package because all four need it:
// the hub must not import wsconn, wsconn must not know topics, and bpool,
// which the other three import, holds buffers, not queue rules.
package slowpolicy

import "fmt"

// Policy is what a full out queue does with a message of a topic. The zero
// value, Default, defers to the connection server's own SlowPolicy.
type Policy uint8

const (
	// Default applies the connection server's SlowPolicy (--slow-policy).
	Default Policy = iota
	// DropOldest discards the oldest queued message to make room.
	DropOldest
	// DropNewest discards the message being sent.
	DropNewest
	// Close discards everything queued and closes the connection with
	// 1008 "slow consumer".
	Close
	// Conflate keeps at most one unwritten message of the topic per
	// connection: a newer one replaces the queued one. A full queue with
	// none of the topic's messages in it applies Default.
	Conflate
)

// String returns the flag spelling of the policy ("default" for Default).
func (p Policy) String() string {
	switch p {
	case Default:
		return "default"
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	case Close:
		return "close"
	case Conflate:
		return "conflate"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Parse reads conflate, close, drop-oldest or drop-newest. Default has no
// spelling: a topic that names no policy gets it.
func Parse(s string) (Policy, error) {
	for _, p := range [...]Policy{Conflate, Close, DropOldest, DropNewest} {
		if p.String() == s {
			return p, nil
		}
	}
	return Default, fmt.Errorf("%w %q (want conflate, close, drop-oldest or drop-newest)", ErrUnknown, s)
}
