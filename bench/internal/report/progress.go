package report

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Progress rewrites one status line on a terminal; on anything else it
// prints nothing.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	printed bool // guarded by mu
}

// NewProgress returns a progress line on f, live only when f is a terminal.
func NewProgress(f *os.File) *Progress {
	return &Progress{w: f, on: f != nil && IsTerminal(f)}
}

// Update replaces the line with the formatted text.
func (p *Progress) Update(format string, a ...any) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K"+format, a...)
	p.printed = true
}

// Done ends the line so that what follows starts on a fresh one.
func (p *Progress) Done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprint(p.w, "\r\033[K")
		p.printed = false
	}
}
