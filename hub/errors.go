package hub

import "errors"

// Errors callers branch on.
var (
	// ErrTooManyTopics is returned when a new topic would exceed
	// Config.MaxTopics.
	ErrTooManyTopics = errors.New("hub: too many topics")
)
