package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// awaitPollers returns once every nbio poller goroutine has entered its
// event loop.
//
// Why: in nbio v1.6.8 poller.readWriteLoop sets p.shutdown = false when it
// starts, so an Engine.Stop that runs before a poller goroutine was first
// scheduled is forgotten and Stop then waits for that poller forever. A
// benchmark run never stops that early, but the in-process tests do (a few
// milliseconds after Start, under -race), which hung roughly one run in
// fifty with three pollers.
//
// How: nbio places a connection on poller fd%NPoller. We open loopback
// probe connections (kept open so fds keep growing) until every poller has
// one, make each readable, and wait until each poller has read its probe,
// which it can only do from inside its loop.
//
// The probes stay open until release, which the caller runs after
// Engine.Stop. Closing them here raced: a poller could still hold an event
// for a probe's fd from its last epoll_wait batch, the next accepted
// connection could reuse that fd number, and nbio, which looks a
// connection up by fd, then closed the new connection before its 101
// (a client saw "unexpected EOF" on its first dial, about one CI run in
// several hundred).
func awaitPollers(e *nbhttp.Engine, timeout time.Duration) (release func(), err error) {
	release = func() {}
	n := e.Engine.NPoller
	if n <= 0 {
		return release, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return release, err
	}
	defer func() { _ = ln.Close() }()

	var clients []net.Conn
	var probes []*nbio.Conn
	release = func() {
		for _, c := range clients {
			_ = c.Close()
		}
		for _, c := range probes {
			_ = c.Close()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()

	read := make(chan struct{}, n)
	covered := make([]bool, n)
	for left, tries := n, 0; left > 0; tries++ {
		if tries > 4*n+16 {
			return release, errors.New("nbio peer: could not place a probe connection on every poller")
		}
		cli, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return release, err
		}
		clients = append(clients, cli)
		srv, err := ln.Accept()
		if err != nil {
			return release, err
		}
		nbc, err := nbio.NBConn(srv) // dups the fd and closes srv
		if err != nil {
			_ = srv.Close()
			return release, err
		}
		probes = append(probes, nbc)
		idx := nbc.Hash() % n
		if covered[idx] {
			continue
		}
		covered[idx] = true
		left--
		nbc.OnData(func(*nbio.Conn, []byte) {
			select {
			case read <- struct{}{}:
			default:
			}
		})
		if _, err = cli.Write([]byte{0}); err != nil {
			return release, err
		}
		raceRelease()
		if _, err = e.AddConn(nbc); err != nil {
			return release, err
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-read:
		case <-deadline.C:
			err = fmt.Errorf("nbio peer: only %d of %d pollers started within %v", i, n, timeout)
			return release, err
		}
	}
	return release, nil
}
