package policies

import (
	"context"

	"github.com/valkey-io/valkey-go"
)

type idempotentKey struct{}

// WithIdempotent returns a context that marks the commands issued with it
// as safe to repeat: the engine may send them again after a connection
// failure left their outcome unknown (INCR is not idempotent; SET k v is).
// Read-only commands are always repeatable and need no mark. A nil ctx,
// which the engine's methods take as context.Background(), is taken so
// here too.
func WithIdempotent(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, idempotentKey{}, true)
}

// IsIdempotent reports whether ctx carries the WithIdempotent mark; a nil
// ctx does not.
func IsIdempotent(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	v, _ := ctx.Value(idempotentKey{}).(bool)
	return v
}

// Repeatable reports whether cmd may be sent again when its outcome is
// unknown: it is read-only, or ctx marks it idempotent.
func Repeatable(ctx context.Context, cmd valkey.Completed) bool {
	return cmd.IsReadOnly() || IsIdempotent(ctx)
}
