// Package hub is this node's fan-out: which local subscribers each topic
// has, and the delivery of every publication the engine (package engine)
// hands it.
//
// Topics live in shards (by a hash of the name) so that deliveries to
// different topics never contend on one lock. Each topic has its own mutex,
// held for a whole fan-out: a publication is framed once, into one pooled
// buffer all subscribers share, and queued to each in seq order. Publish
// goes through the engine, which gives the seq and brings the publication
// back to every listening node's hub (this one synchronously with the
// memory engine).
//
// A topic exists on the node exactly while it has subscribers: the first
// SubscribeAt creates it and makes the node listen to it in the engine (the
// engine's answer is the position the topic starts at; publications that
// arrive meanwhile wait), and the Unsubscribe of its last subscriber removes
// it and stops listening. A subscriber joins at a position: every
// publication after it reaches the subscriber, none at or before it does. A
// subscriber being recovered is held: its live frames wait in the hub while
// the caller sends it the messages it missed (Recover), and Release lets
// them through, so the switch from history to live has no gap and no
// duplicate.
//
// Each topic run has a slow-consumer policy (Config.Policy, asked once when
// the topic is created): the hub writes it on every publication's frame
// (bpool.Frame.Slow) with, for a conflated run, a key no other run has
// (bpool.Frame.Conflate); the connections' queues apply it. Resets and
// recovered messages are not marked.
//
// Lock order: a shard's mutex, then a topic's mutex, never the reverse; the
// hub never calls the engine while holding either (the engine may hold its
// own locks while it calls HandlePublication). See locksordering.txt.
//
// What hub never does: it never writes to a socket and never waits on a
// subscriber. Subscriber.Send must not block; the writer goroutines do the
// socket work after the topic lock is gone.
package hub
