package engine

import (
	"context"
	"fmt"

	"github.com/vactor-io/vactor/futures"
)

// LPush inserts values at the head of the list at key, one after the
// other (so the last value ends up first), and returns the list's new
// length. The list is created when missing. No values fails with
// ErrInvalidArgument.
func (e *Engine) LPush(ctx context.Context, key string, values ...string) *futures.Future[int64] {
	if len(values) == 0 {
		return fail[int64](fmt.Errorf("%w: LPUSH needs at least one value", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Lpush().Key(key).Element(values...).Build(), decodeInt64)
}

// RPush appends values to the tail of the list at key and returns the
// list's new length. The list is created when missing. No values fails with
// ErrInvalidArgument.
func (e *Engine) RPush(ctx context.Context, key string, values ...string) *futures.Future[int64] {
	if len(values) == 0 {
		return fail[int64](fmt.Errorf("%w: RPUSH needs at least one value", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Rpush().Key(key).Element(values...).Build(), decodeInt64)
}

// LPop removes and returns the first element of the list at key; the
// future fails with ErrNil when the list is empty or missing.
func (e *Engine) LPop(ctx context.Context, key string) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Lpop().Key(key).Build(), decodeString)
}

// RPop removes and returns the last element of the list at key; the
// future fails with ErrNil when the list is empty or missing.
func (e *Engine) RPop(ctx context.Context, key string) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Rpop().Key(key).Build(), decodeString)
}

// LRange returns the elements of the list at key from index start to stop,
// both inclusive; negative indexes count from the end (-1 is the last).
// A missing key or an empty range is an empty slice, not an error.
func (e *Engine) LRange(ctx context.Context, key string, start, stop int64) *futures.Future[[]string] {
	return submit(e, ctx, key, e.b.Lrange().Key(key).Start(start).Stop(stop).Build(), decodeStrings)
}

// LLen returns the length of the list at key (0 when missing).
func (e *Engine) LLen(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Llen().Key(key).Build(), decodeInt64)
}

// LRem removes elements equal to value from the list at key and returns
// how many it removed (0 when the key is missing): count > 0 removes up to
// count from the head, count < 0 up to -count from the tail, 0 all of them.
func (e *Engine) LRem(ctx context.Context, key string, count int64, value string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Lrem().Key(key).Count(count).Element(value).Build(), decodeInt64)
}
