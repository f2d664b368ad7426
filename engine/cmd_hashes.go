package engine

import (
	"context"
	"fmt"

	"github.com/vactor-io/vactor/futures"
)

// HSet sets fields of the hash at key from alternating field/value
// arguments and returns how many fields were added (fields that existed
// and were overwritten are not counted). The hash is created when missing.
// An empty or odd-length fieldValues fails with ErrInvalidArgument.
func (e *Engine) HSet(ctx context.Context, key string, fieldValues ...string) *futures.Future[int64] {
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return fail[int64](fmt.Errorf("%w: HSET needs field/value pairs, got %d arguments", ErrInvalidArgument, len(fieldValues)))
	}
	fv := e.b.Hset().Key(key).FieldValue()
	for i := 0; i < len(fieldValues); i += 2 {
		fv = fv.FieldValue(fieldValues[i], fieldValues[i+1])
	}
	return submit(e, ctx, key, fv.Build(), decodeInt64)
}

// HSetMap is HSet with the fields and values of m (go-redis's
// HSet(ctx, key, map)): it sets them in one HSET, in the map's iteration
// order, and returns how many fields were added. An empty m fails with
// ErrInvalidArgument.
func (e *Engine) HSetMap(ctx context.Context, key string, m map[string]string) *futures.Future[int64] {
	if len(m) == 0 {
		return fail[int64](fmt.Errorf("%w: HSET needs at least one field, got an empty map", ErrInvalidArgument))
	}
	fv := e.b.Hset().Key(key).FieldValue()
	for f, v := range m {
		fv = fv.FieldValue(f, v)
	}
	return submit(e, ctx, key, fv.Build(), decodeInt64)
}

// HGet returns the value of field in the hash at key; the future fails
// with ErrNil when the field or the key does not exist.
func (e *Engine) HGet(ctx context.Context, key, field string) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Hget().Key(key).Field(field).Build(), decodeString)
}

// HMGet returns the values of fields in the hash at key, in order; a
// missing field (or a missing key) is a nil entry. No fields fails with
// ErrInvalidArgument.
func (e *Engine) HMGet(ctx context.Context, key string, fields ...string) *futures.Future[[]*string] {
	if len(fields) == 0 {
		return fail[[]*string](fmt.Errorf("%w: HMGET needs at least one field", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Hmget().Key(key).Field(fields...).Build(), decodeNullableStrings)
}

// HDel removes fields from the hash at key and returns how many existed
// (0 when the key is missing). No fields fails with ErrInvalidArgument.
func (e *Engine) HDel(ctx context.Context, key string, fields ...string) *futures.Future[int64] {
	if len(fields) == 0 {
		return fail[int64](fmt.Errorf("%w: HDEL needs at least one field", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Hdel().Key(key).Field(fields...).Build(), decodeInt64)
}

// HExists reports whether field exists in the hash at key (false when the
// key is missing).
func (e *Engine) HExists(ctx context.Context, key, field string) *futures.Future[bool] {
	return submit(e, ctx, key, e.b.Hexists().Key(key).Field(field).Build(), decodeBool)
}

// HGetAll returns every field and value of the hash at key; a missing key
// is an empty map, not an error.
func (e *Engine) HGetAll(ctx context.Context, key string) *futures.Future[map[string]string] {
	return submit(e, ctx, key, e.b.Hgetall().Key(key).Build(), decodeStrMap)
}

// HIncrBy adds n to the integer in field of the hash at key and returns the
// new value. A missing key or field counts as 0.
func (e *Engine) HIncrBy(ctx context.Context, key, field string, n int64) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Hincrby().Key(key).Field(field).Increment(n).Build(), decodeInt64)
}

// HIncrByFloat adds incr to the number in field of the hash at key (0
// when missing) and returns the new value. A NaN or infinite incr fails
// with ErrInvalidArgument. A result beyond float64's range reads as +Inf
// or -Inf, as IncrByFloat's, and the server rounds the sum it stores to
// 17 digits after the decimal point as IncrByFloat's (an increment below
// 5e-18 on 0 adds nothing; see IncrByFloat).
func (e *Engine) HIncrByFloat(ctx context.Context, key, field string, incr float64) *futures.Future[float64] {
	if err := checkIncr("HINCRBYFLOAT", incr); err != nil {
		return fail[float64](err)
	}
	return submit(e, ctx, key, e.b.Hincrbyfloat().Key(key).Field(field).Increment(incr).Build(), decodeFloat64)
}

// HSetNX sets field of the hash at key to value only if the field does
// not exist, and reports whether it did.
func (e *Engine) HSetNX(ctx context.Context, key, field, value string) *futures.Future[bool] {
	return submit(e, ctx, key, e.b.Hsetnx().Key(key).Field(field).Value(value).Build(), decodeIntBool)
}

// HLen returns the number of fields in the hash at key (0 when missing).
func (e *Engine) HLen(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Hlen().Key(key).Build(), decodeInt64)
}

// HKeys returns the field names of the hash at key, in no particular order
// (empty when the key is missing).
func (e *Engine) HKeys(ctx context.Context, key string) *futures.Future[[]string] {
	return submit(e, ctx, key, e.b.Hkeys().Key(key).Build(), decodeStrings)
}

// HVals returns the values of the hash at key, in no particular order
// (empty when the key is missing).
func (e *Engine) HVals(ctx context.Context, key string) *futures.Future[[]string] {
	return submit(e, ctx, key, e.b.Hvals().Key(key).Build(), decodeStrings)
}
