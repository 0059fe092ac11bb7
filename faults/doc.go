// Package faults holds fault-injection tests that run the real wspushd
// binary as a child process, so that they can measure its RSS and open
// descriptors from /proc and send it real signals: never-reading clients
// flooded with messages, SIGTERM in the middle of a broadcast, and tens of
// thousands of connect/disconnect cycles. It has no non-test code beyond
// this comment; everything it needs is started and stopped by the tests.
package faults
