package main

import (
	"testing"

	"github.com/wspush/wspush/bench/peers/internal/peertest"
)

func TestProtocol(t *testing.T) { peertest.ProtocolSuite(t, run) }

// TestManyPollers runs the same checks with more poller goroutines than the
// default single one, so callbacks for different connections run in
// parallel with the publish handler.
func TestManyPollers(t *testing.T) { peertest.ProtocolSuite(t, run, "-pollers", "3") }
