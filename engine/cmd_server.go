package engine

import (
	"context"

	"github.com/vactor-io/vactor/futures"
)

// PingFuture sends PING and returns its future (the reply, "PONG").
func (e *Engine) PingFuture(ctx context.Context) *futures.Future[string] {
	return submit(e, ctx, "", e.b.Ping().Build(), decodeString)
}

// Ping sends PING on every connection and waits for the replies; it
// returns the first error, or ctx's when ctx ends first.
func (e *Engine) Ping(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	conns := e.connStates()
	fs := make([]*futures.Future[string], len(conns))
	for i, c := range conns {
		fs[i] = submitTo(e, c, ctx, e.b.Ping().Build(), decodeString)
	}
	_, err := futures.All(ctx, fs...)
	return err
}

// IsHealthy reports whether every connection answers PING before ctx ends.
func (e *Engine) IsHealthy(ctx context.Context) bool { return e.Ping(ctx) == nil }

// Publish posts message on channel and returns the number of subscribers
// that received it.
func (e *Engine) Publish(ctx context.Context, channel, message string) *futures.Future[int64] {
	return submit(e, ctx, channel, e.b.Publish().Channel(channel).Message(message).Build(), decodeInt64)
}
