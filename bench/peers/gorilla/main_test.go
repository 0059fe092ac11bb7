package main

import (
	"strings"
	"testing"

	"github.com/wspush/wspush/bench/peers/internal/peertest"
)

func TestProtocol(t *testing.T) { peertest.ProtocolSuite(t, run) }

// TestSlowClientDrops checks the chat-example policy: a client that stops
// reading fills its kernel buffers and then its 64-slot channel, after which
// it misses messages instead of stalling the hub or other clients.
func TestSlowClientDrops(t *testing.T) {
	s, err := start([]string{"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	p := &peertest.Peer{WS: s.ws.Addr(), API: s.api.Addr()}
	_ = p.MustDial(t, "firehose") // never reads
	fast := p.MustDial(t, "firehose")
	data := `"` + strings.Repeat("z", 64<<10) + `"`
	// Every round trip makes progress, so this is a bounded loop, not a poll.
	published := 0
	for {
		r := p.Publish(t, "firehose", data)
		published++
		if got := peertest.Read(t, fast); got.Seq != r.Seq {
			t.Fatalf("fast client got seq %d, want %d", got.Seq, r.Seq)
		}
		if r.Recipients == 1 {
			break
		}
		if published == 2000 {
			t.Fatalf("slow client still receiving after %d publishes of %d bytes", published, len(data))
		}
	}
	if d := s.hub.drops.Load(); d == 0 {
		t.Fatalf("recipients fell to 1 after %d publishes but no drop was counted", published)
	}
}
