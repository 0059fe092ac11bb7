package netpoll

import "errors"

// Errors callers branch on.
var (
	// ErrClosed is returned by operations on a Poller or Group after Close.
	ErrClosed = errors.New("netpoll: poller closed")
	// ErrNotRegistered is returned by Rearm and Remove for an unknown fd.
	ErrNotRegistered = errors.New("netpoll: fd not registered")
	// ErrRegistered is returned by Add for an fd that is already watched.
	ErrRegistered = errors.New("netpoll: fd already registered")
)
