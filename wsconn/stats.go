package wsconn

import (
	"sync/atomic"

	"github.com/gobwas/ws"
)

// Stats counts what a Server's connections did. Every field is updated
// atomically by connection goroutines and may be read at any time.
type Stats struct {
	Accepted  atomic.Int64 // TCP connections accepted
	Upgraded  atomic.Int64 // successful upgrades
	Open      atomic.Int64 // connections currently registered (any state)
	Delivered atomic.Int64 // data messages written to sockets
	// DeliveredCompressed counts the part of Delivered written compressed
	// (permessage-deflate).
	DeliveredCompressed atomic.Int64
	DroppedOldest       atomic.Int64 // messages dropped by drop-oldest
	DroppedNewest       atomic.Int64 // messages dropped by drop-newest
	DroppedClose        atomic.Int64 // messages discarded by the close policy
	LostClosed          atomic.Int64 // messages discarded because the connection closed first
	// Conflated counts queued, unwritten messages of a conflated topic
	// (bpool.Frame.Conflate) replaced by a newer one of the same topic.
	Conflated  atomic.Int64
	SlowClosed atomic.Int64 // connections closed as slow consumers
	// IdleClosed counts connections closed because the client sent
	// nothing, not even a pong, for IdleTimeout.
	IdleClosed atomic.Int64
	// ReadTimeoutClosed counts connections closed because a message
	// stayed incomplete for ReadTimeout.
	ReadTimeoutClosed atomic.Int64
	WriteErrors       atomic.Int64 // writes that failed or timed out
	Writers           atomic.Int64 // writer goroutines running now
	// Writes counts writev calls that wrote to a client socket; Delivered
	// over Writes is how many deliveries one write carries.
	Writes          atomic.Int64
	HandshakeFailed atomic.Int64 // upgrade requests refused or malformed (answered with an HTTP error)
	// HandshakeTimeouts counts connections dropped because the upgrade
	// request was not complete within HandshakeTimeout.
	HandshakeTimeouts atomic.Int64
	// HandshakeAborted counts connections the client closed or reset before
	// its upgrade request was complete.
	HandshakeAborted atomic.Int64
	Panics           atomic.Int64 // handler panics recovered (each ended its connection only)
	// Pings counts keepalives sent (counted when due): written directly,
	// carried or queued.
	Pings atomic.Int64
	// PingsDirect counts the keepalives among Pings that the sweeper wrote
	// itself (the connection stayed idle for a sweep after the ping was
	// due: no goroutine, no queue).
	PingsDirect atomic.Int64
	// PingsCarried counts the keepalives among Pings that went out in the
	// write of a frame pushed within a sweep of the ping being due: no
	// system call of their own.
	PingsCarried atomic.Int64
	// PingsSkipped counts keepalive rounds that sent no ping because
	// deliveries had been written to the connection since its last round
	// (they prove it alive; not counted in Pings).
	PingsSkipped atomic.Int64
	// Pongs counts pong frames received (answers to keepalives, or
	// unsolicited).
	Pongs atomic.Int64

	closeSent [closeSlots]atomic.Int64 // close codes sent, by closeSlot
	closeRecv [closeSlots]atomic.Int64 // close codes received, by closeSlot
}

// closeSlots covers 1000-1015 plus one slot for "other" and one for "none".
const closeSlots = 18

func closeSlot(code ws.StatusCode) int {
	switch {
	case code == 0:
		return 17
	case code >= 1000 && code <= 1015:
		return int(code - 1000)
	}
	return 16
}

// SlotCode returns the code a close-count slot stands for: 1000-1015, 0 for
// "other" and -1 for "no code".
func SlotCode(slot int) int {
	switch {
	case slot < 16:
		return 1000 + slot
	case slot == 16:
		return 0
	}
	return -1
}

// CloseSlots is the number of slots CloseSent and CloseReceived index.
const CloseSlots = closeSlots

// CloseSent reports how many close frames were sent in a slot (see SlotCode).
func (s *Stats) CloseSent(slot int) int64 { return s.closeSent[slot].Load() }

// CloseReceived reports how many close frames were received in a slot.
func (s *Stats) CloseReceived(slot int) int64 { return s.closeRecv[slot].Load() }

// Dropped is the sum of all policy drops.
func (s *Stats) Dropped() int64 {
	return s.DroppedOldest.Load() + s.DroppedNewest.Load() + s.DroppedClose.Load()
}

// countClose counts a close the server started, by its cause.
func (s *Stats) countClose(cause error) {
	switch cause {
	case ErrSlowConsumer:
		s.SlowClosed.Add(1)
	case ErrIdle:
		s.IdleClosed.Add(1)
	case ErrReadTimeout:
		s.ReadTimeoutClosed.Add(1)
	}
}
