package engine

import (
	"context"
	"fmt"

	"github.com/vactor-io/vactor/futures"
)

// SAdd adds members to the set at key and returns how many were not
// already in it. The set is created when missing. No members fails with
// ErrInvalidArgument.
func (e *Engine) SAdd(ctx context.Context, key string, members ...string) *futures.Future[int64] {
	if len(members) == 0 {
		return fail[int64](fmt.Errorf("%w: SADD needs at least one member", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Sadd().Key(key).Member(members...).Build(), decodeInt64)
}

// SRem removes members from the set at key and returns how many were in it
// (0 when the key is missing). No members fails with ErrInvalidArgument.
func (e *Engine) SRem(ctx context.Context, key string, members ...string) *futures.Future[int64] {
	if len(members) == 0 {
		return fail[int64](fmt.Errorf("%w: SREM needs at least one member", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Srem().Key(key).Member(members...).Build(), decodeInt64)
}

// SMembers returns the members of the set at key, in no particular order
// (empty when the key is missing).
func (e *Engine) SMembers(ctx context.Context, key string) *futures.Future[[]string] {
	return submit(e, ctx, key, e.b.Smembers().Key(key).Build(), decodeStrings)
}

// SIsMember reports whether member is in the set at key (false when the
// key is missing).
func (e *Engine) SIsMember(ctx context.Context, key, member string) *futures.Future[bool] {
	return submit(e, ctx, key, e.b.Sismember().Key(key).Member(member).Build(), decodeBool)
}

// SCard returns the number of members of the set at key (0 when missing).
func (e *Engine) SCard(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Scard().Key(key).Build(), decodeInt64)
}
