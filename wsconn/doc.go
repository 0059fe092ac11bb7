// Package wsconn is the WebSocket connection: the upgrade, the frame reader,
// the per-connection writer and the Server that accepts, registers, sweeps
// and shuts them down. It speaks the server side of RFC 6455 on top of
// github.com/gobwas/ws.
//
// Reading. No goroutine per connection waits in a read. The Server registers
// every socket with netpoll; a readable socket is handed to a dispatch worker
// that serves it (lifecycle.go): non-blocking reads of what is there,
// complete frames parsed, an incomplete one (or an incomplete
// upgrade request) in a pooled buffer on the connection until the rest
// arrives. Serve never waits for a client. Message sizes are checked against
// MaxMessage from the frame header, before the payload is buffered; a message
// must complete within ReadTimeout of its first byte. From
// the proxies listed in Config.ProxyProtocol, a PROXY protocol header is read
// the same way before the upgrade request, and names the client (proxy.go).
//
// Writing. All WebSocket traffic to a socket is written by that connection's
// one writer goroutine (read/write separation), fed by a bounded out queue
// that belongs to it (writer.go: the queue, its goroutine and the policy).
// Send never blocks; a full queue follows the SlowPolicy and every drop is
// counted. With WriterOnDemand the writer exists only while the queue has
// work, so an idle connection costs its struct and no goroutine. Queued frames
// go out together in one writev. Frames are shared, reference-counted pooled
// buffers (internal/bpool): a broadcast is encoded once for all recipients.
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
// Handler's business) and never writes to a socket from a worker or from the
// goroutine that calls Send.
package wsconn
