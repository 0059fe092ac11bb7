// Package server is wspushd: it puts the WebSocket connections (wsconn), the
// topic hub (hub) and the protocol v1 commands (protocol) together, and
// serves the HTTP API (publish, health, readiness, metrics, pprof) on its
// own listener.
//
// server owns the policy: which upgrade is accepted (path, Origin, topics,
// capacity), what a client command does, and what is counted. It never
// touches a socket itself: wsconn reads and writes, hub fans out.
package server
