// Package hub maps topics to their subscribers and fans a publish out to
// them.
//
// Topics live in shards (by a hash of the name) so that publishes to
// different topics never contend on one lock. Each topic has its own mutex
// that orders its publishes: the seq is taken and the frame is queued to every
// subscriber under it, so every subscriber sees a topic's messages in seq
// order. A publish frames the message once; all subscribers share that one
// pooled buffer.
//
// What hub never does: it never writes to a socket and never waits on a
// subscriber. Subscriber.Send must not block; the writer goroutines do the
// socket work after the topic lock is gone.
package hub
