package server

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/wspush/wspush/clients/js"
)

// TestServesJSClient: GET /wspush.js on the WebSocket listener is the
// browser client from clients/js, with its type and caching headers, and
// the WebSocket path still upgrades.
func TestServesJSClient(t *testing.T) {
	s := startServer(t, Config{})
	base := "http://" + s.WSAddr().String()
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/wspush.js", http.StatusOK},
		{"/wspush.js?v=1", http.StatusOK},
		{"/nope.js", http.StatusBadRequest}, // not a file: the upgrade refuses it
	} {
		resp, body := httpGet(t, base+tc.path)
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		if tc.status != http.StatusOK {
			continue
		}
		if !bytes.Equal(body, js.Source()) || !bytes.Contains(body, []byte("export class WspushClient")) {
			t.Fatalf("GET %s: %d bytes that are not clients/js/wspush.js", tc.path, len(body))
		}
		if ct, cc, ao := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), resp.Header.Get("Access-Control-Allow-Origin"); ct != js.ContentType || cc == "" || ao != "*" {
			t.Fatalf("GET %s: Content-Type %q, Cache-Control %q, Access-Control-Allow-Origin %q (a module script from another origin needs *)", tc.path, ct, cc, ao)
		}
	}
	dial(t, s, "/ws").Close()
}

// TestServesDemoPage: with Demo, GET / on the WebSocket listener is the demo
// page from clients/js, which loads the client from the same server;
// without it, GET / is refused like any other path that is not a file.
func TestServesDemoPage(t *testing.T) {
	for _, demo := range []bool{true, false} {
		s := startServer(t, Config{Demo: demo})
		resp, body := httpGet(t, "http://"+s.WSAddr().String()+"/")
		if !demo {
			if resp.StatusCode != http.StatusBadRequest || bytes.Equal(body, js.Demo()) {
				t.Fatalf("without Demo, GET /: %d (want %d, as for /nope.js) and %d bytes", resp.StatusCode, http.StatusBadRequest, len(body))
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != js.DemoContentType {
			t.Fatalf("with Demo, GET /: %d, Content-Type %q; want 200, %q", resp.StatusCode, resp.Header.Get("Content-Type"), js.DemoContentType)
		}
		if !bytes.Equal(body, js.Demo()) || !bytes.Contains(body, []byte(`from './wspush.js'`)) {
			t.Fatalf("with Demo, GET /: %d bytes that are not clients/js/demo.html importing ./wspush.js", len(body))
		}
		dial(t, s, "/ws").Close()
	}
}
