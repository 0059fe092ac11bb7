package netpoll_test

import (
	"fmt"
	"net"

	"github.com/wspush/wspush/netpoll"
)

// readyHandler hands each readiness event to another goroutine, as a real
// server hands it to a worker pool; HandleEvent itself must not block.
type readyHandler chan netpoll.Event

func (h readyHandler) HandleEvent(fd int, ev netpoll.Event) { h <- ev }

func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	// One poller keeps the example deterministic: its first event proves
	// its goroutine is running before Close.
	g, err := netpoll.NewGroup(1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	fd, err := netpoll.FD(conn.(*net.TCPConn))
	if err != nil {
		fmt.Println(err)
		return
	}
	events := make(readyHandler, 1)
	poller, err := g.Add(fd, events)
	if err != nil {
		fmt.Println(err)
		return
	}

	client.Write([]byte("hello"))

	// One event per readiness: handle it, then re-arm.
	ev := <-events
	fmt.Println("readable:", ev&netpoll.EventRead != 0)
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	fmt.Printf("read %q\n", buf[:n])
	fmt.Println("rearm:", poller.Rearm(fd))

	client.Close()
	ev = <-events
	fmt.Println("hang-up:", ev&netpoll.EventHangup != 0)

	// Remove before closing the socket, then stop the pollers.
	fmt.Println("remove:", poller.Remove(fd))
	fmt.Println("close:", g.Close())

	// Output:
	// readable: true
	// read "hello"
	// rearm: <nil>
	// hang-up: true
	// remove: <nil>
	// close: <nil>
}
