package dispatch

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by Dispatch after Close.
var ErrClosed = errors.New("dispatch: dispatcher closed")

// PanicError carries a value recovered from a Task's Serve, with the stack
// where it happened.
type PanicError struct {
	Value any    // what Serve panicked with
	Stack []byte // the worker's stack at recovery
}

// Error describes the panic with its value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("dispatch: task panicked: %v", e.Value)
}
