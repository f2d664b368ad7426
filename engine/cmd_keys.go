package engine

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/futures"
)

func needKeys[T any](cmd string, keys []string) *futures.Future[T] {
	if len(keys) == 0 {
		return fail[T](fmt.Errorf("%w: %s needs at least one key", ErrInvalidArgument, cmd))
	}
	return nil
}

// Del deletes keys and returns how many existed.
func (e *Engine) Del(ctx context.Context, keys ...string) *futures.Future[int64] {
	if f := needKeys[int64]("DEL", keys); f != nil {
		return f
	}
	if g := e.bySlot(keys); g != nil {
		return e.splitCount(keys, g, func(ks []string) *futures.Future[int64] { return e.Del(ctx, ks...) })
	}
	return submit(e, ctx, keys[0], e.b.Del().Key(keys...).Build(), decodeInt64)
}

// Unlink deletes keys, reclaiming memory in the background, and returns how
// many existed.
func (e *Engine) Unlink(ctx context.Context, keys ...string) *futures.Future[int64] {
	if f := needKeys[int64]("UNLINK", keys); f != nil {
		return f
	}
	if g := e.bySlot(keys); g != nil {
		return e.splitCount(keys, g, func(ks []string) *futures.Future[int64] { return e.Unlink(ctx, ks...) })
	}
	return submit(e, ctx, keys[0], e.b.Unlink().Key(keys...).Build(), decodeInt64)
}

// Exists returns how many of keys exist (a key named twice counts twice).
func (e *Engine) Exists(ctx context.Context, keys ...string) *futures.Future[int64] {
	if f := needKeys[int64]("EXISTS", keys); f != nil {
		return f
	}
	if g := e.bySlot(keys); g != nil {
		return e.splitCount(keys, g, func(ks []string) *futures.Future[int64] { return e.Exists(ctx, ks...) })
	}
	return submit(e, ctx, keys[0], e.b.Exists().Key(keys...).Build(), decodeInt64)
}

// Expire sets key's time to live in whole seconds (ttl is truncated; below
// one second it is an error) and reports whether the key exists.
func (e *Engine) Expire(ctx context.Context, key string, ttl time.Duration) *futures.Future[bool] {
	if ttl < time.Second {
		return fail[bool](fmt.Errorf("%w: EXPIRE needs a ttl of at least 1s, got %s %s", ErrInvalidArgument, ttl, expireHint(ttl, time.Second)))
	}
	return submit(e, ctx, key, e.b.Expire().Key(key).Seconds(int64(ttl/time.Second)).Build(), decodeIntBool)
}

// PExpire sets key's time to live in milliseconds and reports whether the
// key exists.
func (e *Engine) PExpire(ctx context.Context, key string, ttl time.Duration) *futures.Future[bool] {
	if ttl < time.Millisecond {
		return fail[bool](fmt.Errorf("%w: PEXPIRE needs a ttl of at least 1ms, got %s %s", ErrInvalidArgument, ttl, expireHint(ttl, time.Millisecond)))
	}
	return submit(e, ctx, key, e.b.Pexpire().Key(key).Milliseconds(int64(ttl/time.Millisecond)).Build(), decodeIntBool)
}

// expireHint is what to use instead of a ttl below unit (a second for
// EXPIRE, a millisecond for PEXPIRE): PExpire for a positive ttl below a
// second; for a zero or negative one, which the server takes as "delete
// now", Del or Unlink (PExpire refuses it too).
func expireHint(ttl, unit time.Duration) string {
	if ttl > 0 && unit == time.Second {
		return "(use PExpire)"
	}
	if ttl > 0 {
		return "(ttls are whole milliseconds: round it up)"
	}
	return "(to remove the key now use Del or Unlink)"
}

// TTL is the reply of TTL and PTTL: the remaining time to live, or whether
// the key is missing or has no expiry.
//
// Remaining may be 0 with HasExpiry true: a key about to expire (TTL's
// reading of one with less than half a second left). Check HasExpiry,
// not Remaining > 0, and do not pass such a Remaining on to Set or
// SetArgs, which take a ttl of 0 as "no time to live": the copy would
// never expire (Expire and PExpire refuse 0).
type TTL struct {
	Remaining time.Duration // valid when Exists && HasExpiry
	Exists    bool
	HasExpiry bool
}

func ttlOf(n int64, unit time.Duration) TTL {
	switch {
	case n == -2:
		return TTL{}
	case n == -1:
		return TTL{Exists: true}
	case n > int64(math.MaxInt64/unit):
		// Beyond what a Duration holds (Set accepts up to MaxInt64, which
		// TTL reads back rounded up to the second): the longest one.
		return TTL{Remaining: math.MaxInt64, Exists: true, HasExpiry: true}
	default:
		return TTL{Remaining: time.Duration(n) * unit, Exists: true, HasExpiry: true}
	}
}

// TTL returns key's remaining time to live in whole seconds, rounded to
// the nearest by the server: 1.6s left reads 2s, 0.4s left reads 0 (see
// the TTL type: HasExpiry is true). PTTL has the milliseconds.
func (e *Engine) TTL(ctx context.Context, key string) *futures.Future[TTL] {
	return submit(e, ctx, key, e.b.Ttl().Key(key).Build(), decodeTTLSeconds)
}

// PTTL returns key's remaining time to live with millisecond precision.
func (e *Engine) PTTL(ctx context.Context, key string) *futures.Future[TTL] {
	return submit(e, ctx, key, e.b.Pttl().Key(key).Build(), decodeTTLMillis)
}

// decodeTTLSeconds and decodeTTLMillis decode TTL and PTTL replies in the
// reply's decoder rather than in a Then callback, which would cost each
// call a hop to the callback executor.
func decodeTTLSeconds(r valkey.ValkeyResult) (TTL, error) { return decodeTTL(r, time.Second) }
func decodeTTLMillis(r valkey.ValkeyResult) (TTL, error)  { return decodeTTL(r, time.Millisecond) }

func decodeTTL(r valkey.ValkeyResult, unit time.Duration) (TTL, error) {
	n, err := r.AsInt64()
	if err != nil {
		return TTL{}, typed(&r, err)
	}
	return ttlOf(n, unit), nil
}

// Persist removes key's time to live and reports whether it had one.
func (e *Engine) Persist(ctx context.Context, key string) *futures.Future[bool] {
	return submit(e, ctx, key, e.b.Persist().Key(key).Build(), decodeIntBool)
}

// Type returns the type of the value at key ("string", "list", ..., "none").
func (e *Engine) Type(ctx context.Context, key string) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Type().Key(key).Build(), decodeString)
}

// Rename renames key to newKey; it fails with a *ServerError when key does
// not exist. In cluster mode the two keys must be in one slot (a hash
// tag): else it fails with ErrCrossSlot, unsent.
func (e *Engine) Rename(ctx context.Context, key, newKey string) *futures.Future[struct{}] {
	if err := e.oneSlot("RENAME", key, newKey); err != nil {
		return fail[struct{}](err) // refused unsent, as Do's (qa-AN AN3: the server's CROSSSLOT)
	}
	return submit(e, ctx, key, e.b.Rename().Key(key).Newkey(newKey).Build(), decodeOK)
}
