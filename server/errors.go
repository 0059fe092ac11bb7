package server

import "errors"

// Errors callers branch on.
var (
	// ErrBadConfig wraps an invalid configuration value.
	ErrBadConfig = errors.New("server: bad config")
	// ErrNotStarted is returned by methods that need Start first.
	ErrNotStarted = errors.New("server: not started")
	// ErrReusePort wraps a failure to set SO_REUSEPORT on the listener.
	ErrReusePort = errors.New("server: SO_REUSEPORT")
)
