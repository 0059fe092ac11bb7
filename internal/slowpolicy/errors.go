package slowpolicy

import "errors"

// Errors callers branch on.
var (
	// ErrUnknown wraps a policy name Parse does not know.
	ErrUnknown = errors.New("slowpolicy: unknown policy")
)
