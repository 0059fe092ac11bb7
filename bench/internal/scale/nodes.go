package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wspush/wspush/bench/internal/suite"
)

// Node is one started wspushd as the results record it.
type Node struct {
	// Name is its --node-name.
	Name string `json:"name"`
	// PID is its process id.
	PID int `json:"pid"`
	// API is its own API address (publish, /metrics).
	API string `json:"api"`
	// Log is its log file.
	Log string `json:"log"`
	// Stopped says how it exited after SIGTERM.
	Stopped string `json:"stopped,omitempty"`

	srv suite.Server
}

// cluster is the Redis and the wspushd nodes sharing one WebSocket port.
type cluster struct {
	redis *suite.Redis
	nodes []*Node
	ws    string // the shared WebSocket address
}

// nodeArgs are node i's flags: the shared port with SO_REUSEPORT, its own
// API port, Redis, the connection cap, then the pass-through flags.
func (c *Config) nodeArgs(i int, ws, broker string) []string {
	a := []string{
		"--reuseport", "--listen", ws, "--api-listen", "127.0.0.1:0",
		"--broker", broker, "--node-name", "node" + strconv.Itoa(i+1),
		"--max-conns", strconv.Itoa(c.MaxConns), "--ping-interval", c.PingInterval.String(),
		"--log-level", "info",
	}
	return append(a, c.NodeFlags...)
}

// startCluster starts Redis (the suite's launcher) and nodes wspushd on one
// free port of 127.0.0.1; on failure whatever started is stopped.
func (c *Config) startCluster(ctx context.Context, nodes int) (*cluster, error) {
	r, err := suite.StartRedis(ctx, c.Redis, filepath.Join(c.LogDir, "redis.log"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNodes, err)
	}
	port, err := suite.FreePort()
	if err != nil {
		r.Stop()
		return nil, fmt.Errorf("%w: %w", ErrNodes, err)
	}
	cl := &cluster{redis: r, ws: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	for i := 0; i < nodes; i++ {
		n := &Node{Name: "node" + strconv.Itoa(i+1), Log: filepath.Join(c.LogDir, fmt.Sprintf("node%d.log", i+1))}
		n.srv, err = suite.StartWspushd(ctx, n.Name, c.Wspushd, c.nodeArgs(i, cl.ws, r.URL()), n.Log)
		if err != nil {
			cl.stop()
			return nil, fmt.Errorf("%w: %w", ErrNodes, err)
		}
		ep := n.srv.Endpoint()
		n.PID, n.API = ep.PID, ep.API
		if ep.WS != cl.ws {
			cl.nodes = append(cl.nodes, n)
			cl.stop()
			return nil, fmt.Errorf("%w: %s listens on %s, not the shared %s", ErrNodes, n.Name, ep.WS, cl.ws)
		}
		cl.nodes = append(cl.nodes, n)
	}
	return cl, nil
}

// apis is every node's API address, in node order.
func (cl *cluster) apis() []string {
	out := make([]string, len(cl.nodes))
	for i, n := range cl.nodes {
		out[i] = n.API
	}
	return out
}

// stop sends every node SIGTERM (at once: each drains its clients in
// parallel), waits for them, then stops Redis. It returns the nodes that
// did not exit cleanly, joined.
func (cl *cluster) stop() error {
	errs := make([]error, len(cl.nodes))
	done := make(chan int, len(cl.nodes))
	for i, n := range cl.nodes {
		go func() {
			start := time.Now()
			msg, err := n.srv.Stop()
			n.Stopped = fmt.Sprintf("%s after %.1fs", msg, time.Since(start).Seconds())
			if err != nil {
				errs[i] = fmt.Errorf("%w: %s: %w", ErrNodes, n.Name, err)
			}
			done <- i
		}()
	}
	for range cl.nodes {
		<-done
	}
	cl.redis.Stop()
	return errors.Join(errs...)
}
