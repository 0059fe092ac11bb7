package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own messages (dial failures while Redis is
// down, say) to l at warning level instead of the standard logger. It sets
// a process-wide hook of go-redis: call it once, from main.
func SetLogger(l *slog.Logger) { goredis.SetLogger(slogPrinter{l}) }

// slogPrinter adapts a *slog.Logger to go-redis's Printf logging.
type slogPrinter struct{ l *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	p.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
