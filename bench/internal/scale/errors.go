package scale

import "errors"

// Errors the run and the report return, each wrapped with its details.
var (
	// ErrConfig wraps an invalid setting.
	ErrConfig = errors.New("scale: bad config")
	// ErrSysctl wraps a kernel setting that could not be read, written or
	// restored, or that is too small for the run and could not be raised.
	ErrSysctl = errors.New("scale: sysctl")
	// ErrNodes wraps a failure to start or stop Redis or a wspushd node.
	ErrNodes = errors.New("scale: nodes")
	// ErrClients wraps a failure of the client processes.
	ErrClients = errors.New("scale: clients")
	// ErrPublish wraps a failed publish.
	ErrPublish = errors.New("scale: publish")
	// ErrResults wraps a results file that `bench scale-report` could not
	// read, or that is not a `bench scale --json` result.
	ErrResults = errors.New("scale: results file")
)
