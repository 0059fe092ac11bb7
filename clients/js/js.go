// Package js holds the browser client, wspush.js, for wspushd to serve at
// GET /wspush.js on its WebSocket listener, so that a page can load the
// client from the server it talks to, and the demo page (demo.html) that
// wspushd --demo serves at GET /. The files themselves, the client's types
// (wspush.d.ts) and its tests (node --test) live next to this one; this
// package only embeds them and never changes them.
package js

import _ "embed"

//go:embed wspush.js
var source []byte

//go:embed demo.html
var demo []byte

// Path is where wspushd serves the client.
const Path = "/wspush.js"

// ContentType is the client's media type.
const ContentType = "text/javascript; charset=utf-8"

// DemoPath is where wspushd serves the demo page (with --demo). The page
// loads the client from Path, relative to itself.
const DemoPath = "/"

// DemoContentType is the demo page's media type.
const DemoContentType = "text/html; charset=utf-8"

// Source returns the client's text. The slice is shared: callers must not
// modify it.
func Source() []byte { return source }

// Demo returns the demo page's HTML. The slice is shared: callers must not
// modify it.
func Demo() []byte { return demo }
