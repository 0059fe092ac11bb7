// Package js holds the browser client, wspush.js, for wspushd to serve at
// GET /wspush.js on its WebSocket listener, so that a page can load the
// client from the server it talks to. The file itself, its types
// (wspush.d.ts) and its tests (node --test) live next to this one; this
// package only embeds it and never changes it.
package js

import _ "embed"

//go:embed wspush.js
var source []byte

// Path is where wspushd serves the client.
const Path = "/wspush.js"

// ContentType is the client's media type.
const ContentType = "text/javascript; charset=utf-8"

// Source returns the client's text. The slice is shared: callers must not
// modify it.
func Source() []byte { return source }
