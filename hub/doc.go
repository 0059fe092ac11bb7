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
// A topic exists exactly while it has subscribers: Subscribe creates it (and
// only Subscribe counts against Config.MaxTopics), and the Unsubscribe of its
// last subscriber removes it. A publish to a topic that does not exist
// creates nothing and reaches nobody. Each run of a topic has an epoch, a
// random id: when a topic is created again its seq restarts at 1 under a new
// epoch, so (epoch, seq) never repeats, also across process restarts.
//
// Lock order: a shard's mutex, then a topic's mutex, never the reverse. A
// topic is removed with both held and marked dead; Subscribe, Publish and
// Position look the topic up again when they find it dead.
//
// What hub never does: it never writes to a socket and never waits on a
// subscriber. Subscriber.Send must not block; the writer goroutines do the
// socket work after the topic lock is gone.
package hub
