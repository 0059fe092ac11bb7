// Package conformance is wspush's RFC 6455 conformance suite: a table of
// cases modelled on the Autobahn testsuite (sections 1-7 and 9: framing,
// ping/pong, reserved bits, opcodes, fragmentation, UTF-8, close handling
// and limits; 12 and 13: permessage-deflate, RFC 7692, for a server with
// --compression, which a client publish echoes), a runner that plays each case against a live server over raw
// TCP with internal/wstest, and the report printer.
//
// It owns the case table (Cases), its expectations, the known server
// failures (Case.Known, with their explanations) and the report format. It does not start servers:
// conformance_test.go builds and runs the real wspushd binary, and
// cmd/wsconform runs the suite against any address.
//
// wspushd does not echo messages, so "delivered" is observed through the
// protocol v1 commands of docs/protocol.md: a text message that is
// {"op":"subscribe","topics":["t"],"id":N}, padded with JSON white space to
// the length a case needs, must be answered by {"op":"ack","id":N}; a
// message that is valid UTF-8 but not JSON must be answered by an error
// reply with code "bad_json", the connection staying open. Commands are
// text: a whole binary message (reassembled and within --max-message) is
// answered with close 1003.
//
// Every case runs on its own connection under a per-case timeout. Frames
// from the server are matched strictly in order: an unexpected frame (a pong
// to a ping that should have failed the connection, an ack for a message that
// should have been refused) fails the case. A case that expects a close frame
// also requires the server to end the TCP connection after the close
// handshake; a case that expects the connection to stay open ends with a
// ping that must be answered.
package conformance
