// Package wsconn is the WebSocket connection: the upgrade, the frame reader,
// the per-connection writer and the Server that accepts, registers, sweeps
// and shuts them down. It speaks the server side of RFC 6455 on top of
// github.com/gobwas/ws.
//
// Reading. No goroutine per connection waits in a read. A new connection is
// served once straight from the accept loop (its upgrade request has usually
// arrived with it); from its first wait on, netpoll watches the socket, and a
// readable socket is handed to a dispatch worker
// that serves it (lifecycle.go): non-blocking reads of what is there,
// complete frames parsed, an incomplete one (or an incomplete
// upgrade request) in a pooled buffer on the connection until the rest
// arrives. Serve never waits for a client. Message sizes are checked against
// MaxMessage from the frame header, before the payload is buffered; a message
// must complete within ReadTimeout of its first byte. From
// the proxies listed in Config.ProxyProtocol, a PROXY protocol header is read
// the same way before the upgrade request, and names the client (proxy.go).
//
// Writing. A socket has one writer at a time (read/write separation), fed by
// a bounded out queue that belongs to the connection's write side
// (writer.go: the queue, the policy and the claim on the socket; the writer
// goroutine in writeloop.go). Send never blocks; a full queue follows the
// delivery's own policy (bpool.Frame.Slow, set by the frame's creator),
// else the SlowPolicy, and every drop is counted. A conflated
// delivery (bpool.Frame.Conflate) replaces its topic's unwritten one
// instead of queueing behind it.
// With WriterOnDemand a push that finds the write side idle hands it to one
// of a few flusher goroutines (flush.go), which write everything queued with
// one non-blocking writev; a writer goroutine starts only when a socket is
// full and must be waited for. So an idle or keeping-up connection costs its
// struct and no goroutine, and a fan-out (a batch: BeginBatch .. EndBatch)
// is written once per connection, frames queued together in one write.
// WriterPersistent keeps a goroutine per connection instead. Frames are
// shared, reference-counted pooled buffers (internal/bpool): a broadcast is
// encoded once for all recipients.
//
// Lifecycle: one owner per connection. Every Handler callback for a
// connection, OnClose included, runs on that connection's dispatch slot, one
// at a time and in order; whatever else ends a connection (its writer, the
// sweeper, Send's slow-consumer policy, Shutdown) only marks it, takes it out
// of the poller, closes its queue and has it dispatched, and the worker then
// tears it down (lifecycle.go). A close the rules require (protocol error,
// slow consumer, idle or read timeout, shutdown) is queued as a close frame;
// the writer sends it, half-closes the socket, and the connection waits up to
// CloseTimeout for the peer's close. Locks: locksordering.txt at the root.
//
// What wsconn never does: it knows nothing of topics or JSON (that is the
// Handler's business) and never writes to a socket from the goroutine that
// calls Send, nor from a worker except the 101 response that ends its
// upgrade (one non-blocking write, handshake.go); the end of a batch may
// wait for a flusher's round (pacing a publisher that outruns the
// sockets), never for a client.
package wsconn
