// Package engine is the seam between a node's local fan-out (package hub)
// and the place where a topic's seq, epoch and history live: in this
// process (engine/memory, the default) or in a broker every node shares
// (engine/redis), which makes several wspushd nodes one system.
//
// What an engine owns: assigning each publish the next seq of its topic,
// the epoch of each run of a topic, the history kept for recovery, and
// carrying every publication to every node that listens to its topic, in
// seq order. What it never does: it knows nothing of connections, frames or
// subscribers (the hub fans a publication out to the node's subscribers)
// and never calls its Handler while the caller of one of its methods holds
// a hub lock: the hub never calls an engine with a hub lock held, and an
// engine may hold its own locks while it calls the Handler
// (locksordering.txt).
package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
)

// Position is a place in a topic's stream: the epoch (one run of the topic;
// a new run restarts seq at 1) and a seq in it. The zero Seq of an epoch is
// "before the first publication".
type Position struct {
	Epoch string // 1-32 chars of [A-Za-z0-9_-]
	Seq   uint64
}

// Publication is one published message as every node sees it.
type Publication struct {
	Topic string
	Pos   Position
	// Data is the published JSON, read-only. It is valid only during
	// HandlePublication unless the engine says otherwise (History results
	// are the caller's to keep).
	Data []byte
}

// Handler receives the publications of the topics a node listens to. The
// hub implements it.
type Handler interface {
	// HandlePublication is called for each publication of a listened
	// topic: for one topic one call at a time, in seq order. An engine
	// that can lose publications in transit (a broker connection that
	// dropped) may skip seqs; the Handler fills such a gap from History.
	// It must not block for long and must not call the engine's Listen or
	// Unlisten. It says what the node did with the publication.
	HandlePublication(p Publication) Delivery
	// HandlePosition says where topic stands now (after a broker
	// connection came back, say): a Handler that is behind fills the gap
	// from History, or tells its subscribers it cannot. Same ordering rules
	// as HandlePublication.
	HandlePosition(topic string, pos Position)
}

// Delivery is what one node did with one publication.
type Delivery struct {
	Recipients int // local subscribers it was offered to
	Queued     int // of those, how many queued it (the rest dropped it)
}

// Published is what Publish did.
type Published struct {
	Pos Position
	// Local is this node's Delivery when Sync: an engine that hands the
	// publication to this node's Handler before Publish returns (the
	// memory engine) says what happened here; a broker does not know.
	Local Delivery
	Sync  bool
}

// Engine is where seq, epochs and history live. Its methods are safe for
// concurrent use.
type Engine interface {
	// Publish gives data the next seq of topic (starting a new run with a
	// new epoch if the topic has no run), keeps it in the history when
	// history is on, and hands it to every listening node's Handler. It
	// returns the publication's position.
	Publish(ctx context.Context, topic string, data []byte) (Published, error)
	// Listen makes this node's Handler receive topic's publications and
	// returns the topic's position at that moment: every publication after
	// it reaches the Handler; one at or before it may too (the Handler
	// drops those). A topic never published to answers seq 0 with the
	// epoch its first publication will have. Listens are counted: each
	// needs its Unlisten.
	Listen(ctx context.Context, topic string) (Position, error)
	// Unlisten undoes one Listen.
	Unlisten(topic string)
	// History returns the publications of topic after since and up to
	// seq to (inclusive), in seq order, or ErrNotRecoverable when the
	// topic's current run is not since.Epoch or its history no longer
	// reaches since.Seq+1.
	History(ctx context.Context, topic string, since Position, to uint64) ([]Publication, error)
	// Close stops the engine's background work and releases what it holds.
	Close() error
}

// NewEpoch returns a random id for a new run of a topic: 64 random bits as
// 11 characters of base64 RawURL ([A-Za-z0-9_-]), so that runs never repeat,
// also across restarts.
func NewEpoch() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidEpoch reports whether s has the form of an epoch: 1-32 characters of
// [A-Za-z0-9_-].
func ValidEpoch(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
