// Package protocol is wspush's client contract, version 1.1
// (docs/protocol.md): the JSON commands a client sends, the replies it
// gets, the delivery envelope, topic names, the body of POST /api/publish
// and its answer, and (v1.1) the positions and recovery requests of
// subscriptions.
//
// protocol owns the bytes of the contract only. It never touches a socket or
// a subscription; it parses and it appends. Encoders append to a caller's
// buffer and allocate nothing; a published payload is copied verbatim (it is
// validated as JSON, never decoded and re-encoded, so key order and number
// spelling stay exactly as the publisher sent them).
package protocol
