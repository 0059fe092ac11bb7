// Package dispatch runs the work for readable connections on a bounded
// worker pool (github.com/panjf2000/ants/v2) that it owns.
//
// The guarantee it adds on top of the pool: at most one worker serves a given
// connection at a time. Each connection embeds a Slot; Dispatch submits the
// connection only when its slot goes from idle to running, and an event that
// arrives while a worker is busy with it is folded into one more pass of that
// same worker instead of a second, concurrent one.
//
// What dispatch never does: it never reads or writes a socket and never
// touches epoll; what a Task does in Serve (and when it re-arms its
// descriptor) is the task's business. It never uses ants' package-level pool.
//
// A panic in a Task's Serve is recovered on the worker, reported to that
// task's Abort, and counted; the other connections carry on.
package dispatch
