package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

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

// LTrim keeps only the elements of the list at key from index start to
// stop, both inclusive (negative indexes count from the end); a range
// past the end empties the list, which deletes it.
func (e *Engine) LTrim(ctx context.Context, key string, start, stop int64) *futures.Future[struct{}] {
	return submit(e, ctx, key, e.b.Ltrim().Key(key).Start(start).Stop(stop).Build(), decodeOK)
}

// LIndex returns the element of the list at key at index (negative
// counts from the end); the future fails with ErrNil when the index is
// out of range or the key is missing.
func (e *Engine) LIndex(ctx context.Context, key string, index int64) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Lindex().Key(key).Index(index).Build(), decodeString)
}

// ListSide is a side of a list for LMove and BLMove: Left (the head) or
// Right (the tail).
type ListSide uint8

// The sides of a list.
const (
	Left ListSide = iota
	Right
)

// String returns LEFT or RIGHT, as the server takes it.
func (s ListSide) String() string {
	switch s {
	case Left:
		return "LEFT"
	case Right:
		return "RIGHT"
	}
	return "ListSide(" + strconv.Itoa(int(s)) + ")"
}

// LMove pops an element from the from side (Left or Right) of the list
// at source, pushes it on the to side of the list at destination (which
// may be source: a rotation) and returns it; the future fails with
// ErrNil when source is empty or missing. In cluster mode both keys must
// hash to one slot (ErrCrossSlot otherwise, unsent).
func (e *Engine) LMove(ctx context.Context, source, destination string, from, to ListSide) *futures.Future[string] {
	if err := checkSides("LMOVE", from, to); err != nil {
		return fail[string](err)
	}
	if err := e.oneSlot("LMOVE", source, destination); err != nil {
		return fail[string](err) // as Do refused it
	}
	// Sent as Do sends it, but decoded by its own request: not through a
	// conversion chained on Do's future (see doBlockingAs).
	return submit(e, ctx, source, e.b.Arbitrary("LMOVE").Keys(source, destination).Args(from.String(), to.String()).Build(), decodeString)
}

// BLMove is LMove that waits up to timeout (0: for ever, to the
// millisecond) for an element when source is empty; the future fails
// with ErrNil when none came in time. It is a blocking command: see Do.
// The reliable-queue pattern: BLMove from the queue to a processing list,
// then LRem from it once the job is done.
func (e *Engine) BLMove(ctx context.Context, source, destination string, from, to ListSide, timeout time.Duration) *futures.Future[string] {
	if err := checkSides("BLMOVE", from, to); err != nil {
		return fail[string](err)
	}
	if err := e.oneSlot("BLMOVE", source, destination); err != nil {
		return fail[string](err)
	}
	t, err := blockTimeout(ctx, "BLMOVE", timeout)
	if err != nil {
		return fail[string](err)
	}
	return doBlockingAs(e, ctx, source, "BLMOVE", []string{source, destination, from.String(), to.String(), t}, notNil(Reply.String))
}

// KeyValue is an element popped by BLPop or BRPop and the key of the list
// it came from.
type KeyValue struct {
	Key, Value string
}

// BLPop pops the first element of the first non-empty list of keys,
// waiting up to timeout (0: for ever, to the millisecond) for one when
// all are empty; the future fails with ErrNil when none came in time. It
// is a blocking command: see Do (in cluster mode the keys must hash to
// one slot). No keys fails with ErrInvalidArgument. With a ctx that has a
// deadline the server is told to give up before it (timeout shortened
// by half the time left, at most 200 ms), so that it answers nil rather
// than pop an element for a call the ctx has ended; one the ctx cuts all
// the same (cancelled, or a deadline too close) after it was sent fails
// with ErrOutcomeUnknown: an element it popped is lost. A queue that must
// not lose one moves it with BLMove.
func (e *Engine) BLPop(ctx context.Context, timeout time.Duration, keys ...string) *futures.Future[KeyValue] {
	return e.bpop(ctx, "BLPOP", timeout, keys)
}

// BRPop is BLPop popping the last element.
func (e *Engine) BRPop(ctx context.Context, timeout time.Duration, keys ...string) *futures.Future[KeyValue] {
	return e.bpop(ctx, "BRPOP", timeout, keys)
}

func (e *Engine) bpop(ctx context.Context, name string, timeout time.Duration, keys []string) *futures.Future[KeyValue] {
	if f := needKeys[KeyValue](name, keys); f != nil {
		return f
	}
	if err := e.oneSlot(name, keys...); err != nil {
		return fail[KeyValue](err)
	}
	t, err := blockTimeout(ctx, name, timeout)
	if err != nil {
		return fail[KeyValue](err)
	}
	return doBlockingAs(e, ctx, keys[0], name, append(slices.Clip(keys), t), notNil(func(r Reply) (KeyValue, error) {
		kv, err := r.Strings()
		if err != nil {
			return KeyValue{}, err
		}
		if len(kv) != 2 {
			return KeyValue{}, fmt.Errorf("%w: %s replied with %d elements, want key and value", ErrReplyType, name, len(kv))
		}
		return KeyValue{Key: kv[0], Value: kv[1]}, nil
	}))
}

// oneSlot refuses, in cluster mode, keys of different slots: no node
// would run the command (a blocking one goes outside the routing that
// checks Do's keys).
func (e *Engine) oneSlot(name string, keys ...string) error {
	if e.closed.Load() {
		return ErrClosed // first, as Do's
	}
	if e.cl == nil || len(keys) < 2 {
		return nil
	}
	slot := e.slotOf(keys[0])
	for _, k := range keys[1:] {
		if s := e.slotOf(k); s != slot {
			return fmt.Errorf("%w: %s keys %q (slot %d) and %q (slot %d); use a hash tag", ErrCrossSlot, name, keys[0], slot, k, s)
		}
	}
	return nil
}

// checkSides checks LMOVE's and BLMOVE's sides.
func checkSides(name string, from, to ListSide) error {
	for _, s := range []ListSide{from, to} {
		if s != Left && s != Right {
			return fmt.Errorf("%w: %s sides are Left or Right, got %s", ErrInvalidArgument, name, s)
		}
	}
	return nil
}

// blockMargin is how long before its ctx's deadline a blocking pop's
// server timeout ends: the server answers a timeout up to a tick of its
// clock late (Redis 7.0 at hz 10: 34-91 ms measured, review-32b), and
// the reply has to come back.
const blockMargin = 200 * time.Millisecond

// blockTimeout is a blocking command's timeout argument: seconds, to the
// millisecond (0 waits for ever), and never past ctx's deadline less a
// margin (half the time left, at most blockMargin): the server gives up
// first, answering nil, so that the ctx does not end the call while the
// server pops an element for it, which the reply would then carry to
// nobody (review-32 R3: 5 of 300 BRPops whose ctx ended as an item came
// lost it). With a 50 ms margin an idle poll whose ctx had a deadline
// failed as an outcome unknown 75 times in 76 (review-32b B1).
func blockTimeout(ctx context.Context, name string, timeout time.Duration) (string, error) {
	if timeout < 0 {
		return "", fmt.Errorf("%w: %s needs a timeout of 0 (for ever) or more, got %s", ErrInvalidArgument, name, timeout)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		left -= min(left/2, blockMargin)
		if timeout == 0 || left < timeout {
			timeout = max(left, time.Millisecond)
		}
	}
	if timeout > 0 && timeout < time.Millisecond {
		timeout = time.Millisecond // not 0, which would wait for ever
	}
	return strconv.FormatFloat(timeout.Truncate(time.Millisecond).Seconds(), 'f', -1, 64), nil
}

// notNil is conv for a typed blocking command's Reply (doBlockingAs),
// but a nil reply (its timeout passed) fails with ErrNil.
func notNil[T any](conv func(Reply) (T, error)) func(Reply) (T, error) {
	return func(r Reply) (T, error) {
		if r.IsNil() {
			var zero T
			return zero, ErrNil
		}
		return conv(r)
	}
}
