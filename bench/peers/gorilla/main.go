// Command gorilla is the "classic" benchmark peer: github.com/gorilla/websocket
// used the way its chat example teaches. Every connection gets a reader
// goroutine and a writer goroutine, a buffered send channel (capacity 64)
// sits between a single hub goroutine and each writer, and a client whose
// channel is full simply misses that message (counted, printed to stderr on
// exit). Each publish is framed once with websocket.PreparedMessage and the
// writer writes it with a 10 s write deadline.
//
// With -compression the upgrader accepts permessage-deflate
// (Upgrader.EnableCompression; gorilla always runs it without context
// takeover either way, at its default level, 1): a PreparedMessage then
// keeps one compressed frame next to the plain one, made by the first
// writer of a connection that negotiated the extension, so each publish
// is compressed once, whatever the number of such subscribers. Every
// message goes out compressed to them, whatever its size.
//
// It models the goroutine-per-connection design most Go WebSocket servers
// start from: simple and fair, paying two goroutines and their stacks per
// connection plus a channel hop per delivery.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

const (
	// writeWait bounds a single frame write to a client.
	writeWait = 10 * time.Second
	// sendBuffer is the per-client queue length; beyond it messages drop.
	sendBuffer = 64
	// maxClientMessage bounds frames read from clients (they are discarded).
	maxClientMessage = 64 << 10
)

func main() { peerutil.Main("gorilla", run) }

// run binds both listeners, prints the LISTEN line to stdout and serves
// until ctx is done. It prints the drop total to stderr on the way out.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	s, err := start(args)
	if err != nil {
		return err
	}
	if err := peerutil.Announce(stdout, s.ws.Addr(), s.api.Addr()); err != nil {
		s.stop()
		return err
	}
	<-ctx.Done()
	err = s.stop()
	fmt.Fprintf(os.Stderr, "gorilla: dropped %d messages (send channel full)\n", s.hub.drops.Load())
	return err
}

// server is one running peer.
type server struct {
	hub      *hub
	ws, api  *peerutil.Server
	upgrader websocket.Upgrader
	cancel   context.CancelFunc
	hubDone  chan struct{}
}

func start(args []string) (*server, error) {
	fs := flag.NewFlagSet("gorilla", flag.ContinueOnError)
	var addrs peerutil.Addrs
	addrs.Register(fs)
	compression := fs.Bool("compression", false, "accept permessage-deflate from clients that offer it (no context takeover; each publish compressed once)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	s := &server{
		hub:     newHub(),
		hubDone: make(chan struct{}),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			// Writers only send PreparedMessages, which bypass the write
			// buffer; a pool keeps idle connections from pinning one.
			WriteBufferPool:   &sync.Pool{},
			CheckOrigin:       func(*http.Request) bool { return true },
			EnableCompression: *compression,
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	var err error
	if s.ws, err = peerutil.Listen(addrs.WS, mux); err != nil {
		return nil, err
	}
	if s.api, err = peerutil.Listen(addrs.API, peerutil.APIHandler(s.hub, 0)); err != nil {
		s.ws.CloseListener()
		return nil, err
	}
	var hubCtx context.Context
	hubCtx, s.cancel = context.WithCancel(context.Background())
	go func() {
		s.hub.run(hubCtx)
		close(s.hubDone)
	}()
	s.ws.Start()
	s.api.Start()
	return s, nil
}

// stop closes the listeners, then stops the hub, which closes every
// client's send channel so each writer sends a going-away close frame.
func (s *server) stop() error {
	errWS := s.ws.Close(5 * time.Second)
	errAPI := s.api.Close(5 * time.Second)
	s.cancel()
	<-s.hubDone
	return errors.Join(errWS, errAPI)
}

// serveWS validates the topics, registers the client with the hub (so it
// is subscribed before the 101 goes out), then upgrades and starts the
// reader and writer goroutines.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	topics, err := peerutil.TopicsFromRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := &client{hub: s.hub, topics: topics, send: make(chan *websocket.PreparedMessage, sendBuffer)}
	if !s.hub.add(c) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.hub.remove(c) // Upgrade already replied with an HTTP error
		return
	}
	c.conn = conn
	go c.writePump()
	go c.readPump()
}

// client is one subscriber connection.
type client struct {
	hub    *hub
	conn   *websocket.Conn
	topics []string
	// send carries framed messages from the hub to writePump; the spec's
	// "send chan []byte" holds PreparedMessages here so each publish is
	// framed once rather than once per connection.
	send chan *websocket.PreparedMessage
	// registered is owned by the hub goroutine.
	registered bool
}

// readPump discards client data frames; gorilla's default handlers answer
// pings with pongs and echo a close frame. Any read error unregisters.
func (c *client) readPump() {
	defer func() {
		c.hub.remove(c)
		_ = c.conn.Close()
	}()
	c.conn.SetReadLimit(maxClientMessage)
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// writePump is the only writer of data frames. When the hub closes send it
// says goodbye with a close frame (ignored if the client already closed).
func (c *client) writePump() {
	defer func() { _ = c.conn.Close() }()
	for pm := range c.send {
		_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WritePreparedMessage(pm); err != nil {
			return
		}
	}
	_ = c.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
}
