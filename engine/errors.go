package engine

import "errors"

// Errors callers branch on.
var (
	// ErrNotRecoverable is History's answer when the messages asked for are
	// not all held (another epoch, or trimmed by size or age).
	ErrNotRecoverable = errors.New("engine: history does not reach that position")
	// ErrTooManyTopics is returned when a new topic would exceed the
	// engine's topic cap.
	ErrTooManyTopics = errors.New("engine: too many topics")
	// ErrUnavailable wraps a broker that cannot be reached now.
	ErrUnavailable = errors.New("engine: broker unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("engine: closed")
)
