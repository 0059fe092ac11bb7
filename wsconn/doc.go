// Package wsconn is the WebSocket connection: the upgrade, the frame reader,
// the per-connection writer and the Server that accepts, registers, sweeps
// and shuts them down. It speaks the server side of RFC 6455 on top of
// github.com/gobwas/ws.
//
// Reading. No goroutine per connection waits in a read. The Server registers
// every socket with netpoll; a readable socket is handed to a dispatch worker
// that calls Conn.Serve, which does non-blocking reads of what is there,
// parses complete frames and keeps an incomplete one (or an incomplete
// upgrade request) in a pooled buffer on the connection until the rest
// arrives. Serve never waits for a client. Message sizes are checked against
// MaxMessage from the frame header, before the payload is buffered. From
// the proxies listed in Config.ProxyProtocol, a PROXY protocol header is read
// the same way before the upgrade request, and names the client (proxy.go).
//
// Writing. All WebSocket traffic to a socket is written by that connection's
// one writer goroutine (read/write separation), fed by a bounded out queue.
// Send never blocks; a full queue follows the SlowPolicy and every drop is
// counted. With WriterOnDemand the writer exists only while the queue has
// work, so an idle connection costs its struct and no goroutine. Queued frames
// go out together in one writev. Frames are shared, reference-counted pooled
// buffers (internal/bpool): a broadcast is encoded once for all recipients.
//
// Closing. The read side and the write side shut each other down through one
// teardown that runs exactly once per connection: it unregisters the socket,
// closes it, discards what is still queued (counted as lost) and calls
// Handler.OnClose. A close the rules require (protocol error, slow consumer,
// shutdown) is queued as a close frame; the writer sends it, half-closes the
// socket, and the connection waits up to CloseTimeout for the peer's close.
//
// What wsconn never does: it knows nothing of topics or JSON (that is the
// Handler's business) and never writes to a socket from a worker or from the
// goroutine that calls Send.
package wsconn
