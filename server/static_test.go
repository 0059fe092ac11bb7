package server

import (
	"bytes"
	"io"
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
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
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
