// Command nbio is the event-loop library benchmark peer: WebSockets served
// by github.com/lesismal/nbio's nbhttp engine in its default non-blocking
// (epoll) I/O mode with the nbhttp/websocket upgrader. There is no
// goroutine per connection: nbio's pollers read sockets and run frame
// parsing and callbacks, and writes go straight to the non-blocking socket
// with nbio buffering whatever the kernel does not take.
//
// It models what an off-the-shelf epoll library buys over the classic
// goroutine-per-connection design. nbio has no "prepared message", so each
// publish builds the message JSON once and calls WriteMessage per
// subscriber, which frames it into a pooled buffer and writes it.
//
// The publish API is a plain net/http server; the publish handler fans out
// directly from its own goroutine under the topic's mutex, which keeps
// per-topic deliveries in seq order.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/wspush/wspush/bench/peers/internal/peerutil"
)

func main() { peerutil.Main("nbio", run) }

// nbio logs to stdout by default; stdout belongs to the LISTEN line.
var quietLogs sync.Once

// run binds both listeners, prints the LISTEN line to stdout and serves
// until ctx is done.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	s, err := start(args)
	if err != nil {
		return err
	}
	if err := peerutil.Announce(stdout, s.wsAddr, s.api.Addr()); err != nil {
		_ = s.stop()
		return err
	}
	<-ctx.Done()
	return s.stop()
}

type server struct {
	hub    *hub
	engine *nbhttp.Engine
	api    *peerutil.Server
	wsAddr string
	up     *websocket.Upgrader
	// releaseProbes closes awaitPollers' probe connections; stop runs it
	// after the engine has stopped.
	releaseProbes func()
}

func start(args []string) (*server, error) {
	fs := flag.NewFlagSet("nbio", flag.ContinueOnError)
	var addrs peerutil.Addrs
	addrs.Register(fs)
	pollers := fs.Int("pollers", 0, "nbio poller goroutines (0: nbio's default, NumCPU/4 but at least 1)")
	maxConns := fs.Int("max-conns", 1<<20, "nbio MaxLoad: connections accepted before refusing")
	maxWriteBuf := fs.Int("max-write-buffer", 0, "bytes nbio may buffer per connection before closing it (0: unlimited, nbio's default)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	quietLogs.Do(func() {
		logging.Output = os.Stderr
		logging.SetLevel(logging.LevelError)
	})

	s := &server{hub: newHub()}
	s.up = websocket.NewUpgrader()
	s.up.CheckOrigin = func(*http.Request) bool { return true }
	// No server pings, so no idle read deadline: subscribers may be silent.
	s.up.KeepaliveTime = 0
	s.up.OnMessage(func(*websocket.Conn, websocket.MessageType, []byte) {}) // client data is ignored
	// OnClose runs on nbio's executor pool, never inline inside a
	// WriteMessage call, so taking the subscriber's mutex here cannot
	// deadlock against a publisher that holds it.
	s.up.OnClose(func(c *websocket.Conn, _ error) {
		if sub, ok := c.Session().(*sub); ok {
			s.hub.unsubscribe(sub)
		}
	})
	// The default ping handler answers with a pong and the default close
	// handler echoes the close frame; both are what the protocol asks for.

	// Bind ourselves so port 0 is known before the engine starts; the
	// engine's Listen hook hands it this listener.
	ln, err := net.Listen("tcp", addrs.WS)
	if err != nil {
		return nil, err
	}
	s.wsAddr = ln.Addr().String()
	var handed bool
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Name:                    "nbio-peer",
		Network:                 "tcp",
		Addrs:                   []string{s.wsAddr},
		NPoller:                 *pollers,
		MaxLoad:                 *maxConns,
		MaxWriteBufferSize:      *maxWriteBuf,
		ReleaseWebsocketPayload: true,
		Handler:                 mux,
		Listen: func(string, string) (net.Listener, error) {
			if handed {
				return nil, errors.New("nbio peer: only one listener")
			}
			handed = true
			return ln, nil
		},
	})
	raceHandoff(s.engine)
	if err := s.engine.Start(); err != nil {
		_ = ln.Close()
		return nil, err
	}
	if s.releaseProbes, err = awaitPollers(s.engine, 10*time.Second); err != nil {
		go s.engine.Stop() // may never return if a poller never started
		_ = ln.Close()
		return nil, err
	}
	if s.api, err = peerutil.Listen(addrs.API, peerutil.APIHandler(s.hub, 0)); err != nil {
		s.engine.Stop()
		s.releaseProbes()
		return nil, err
	}
	s.api.Start()
	return s, nil
}

func (s *server) stop() error {
	err := s.api.Close(5 * time.Second)
	s.engine.Stop() // closes the listener and every connection
	s.releaseProbes()
	return err
}

// serveWS runs on nbhttp's handler pool. It subscribes a placeholder before
// Upgrade writes the 101, so no publish that follows the 101 can miss this
// connection; messages published in between are parked on the placeholder
// and written, in order, right after the upgrade.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	topics, err := peerutil.TopicsFromRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sb := s.hub.subscribe(topics)
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		s.hub.unsubscribe(sb) // Upgrade already replied with an HTTP error
		return
	}
	ws.SetSession(sb)
	sb.attach(ws)
}
