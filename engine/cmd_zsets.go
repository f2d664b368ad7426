package engine

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/vactor-io/vactor/futures"
)

// Z is a member of a sorted set with its score.
type Z struct {
	Member string
	Score  float64
}

// ZAdd adds members with their scores to the sorted set at key, updating
// the score of members already in it, and returns how many were added (not
// counting updates). The set is created when missing. No members, or a NaN
// score, fails with ErrInvalidArgument; ±Inf scores are allowed.
func (e *Engine) ZAdd(ctx context.Context, key string, members ...Z) *futures.Future[int64] {
	if len(members) == 0 {
		return fail[int64](fmt.Errorf("%w: ZADD needs at least one member", ErrInvalidArgument))
	}
	for _, m := range members {
		if math.IsNaN(m.Score) {
			return fail[int64](fmt.Errorf("%w: ZADD score of member %q is NaN", ErrInvalidArgument, m.Member))
		}
	}
	sm := e.b.Zadd().Key(key).ScoreMember()
	for _, m := range members {
		sm = sm.ScoreMember(m.Score, m.Member)
	}
	return submit(e, ctx, key, sm.Build(), decodeInt64)
}

// ZRem removes members from the sorted set at key and returns how many
// were in it (0 when the key is missing). No members fails with
// ErrInvalidArgument.
func (e *Engine) ZRem(ctx context.Context, key string, members ...string) *futures.Future[int64] {
	if len(members) == 0 {
		return fail[int64](fmt.Errorf("%w: ZREM needs at least one member", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Zrem().Key(key).Member(members...).Build(), decodeInt64)
}

// ZScore returns the score of member in the sorted set at key; the future
// fails with ErrNil when the member or the key does not exist.
func (e *Engine) ZScore(ctx context.Context, key, member string) *futures.Future[float64] {
	return submit(e, ctx, key, e.b.Zscore().Key(key).Member(member).Build(), decodeFloat64)
}

// ZIncrBy adds incr to the score of member in the sorted set at key and
// returns the new score; a missing member (or key) starts at 0. A NaN incr
// fails with ErrInvalidArgument.
func (e *Engine) ZIncrBy(ctx context.Context, key string, incr float64, member string) *futures.Future[float64] {
	if math.IsNaN(incr) {
		return fail[float64](fmt.Errorf("%w: ZINCRBY increment is NaN", ErrInvalidArgument))
	}
	return submit(e, ctx, key, e.b.Zincrby().Key(key).Increment(incr).Member(member).Build(), decodeFloat64)
}

// ZRange returns the members of the sorted set at key ranked from start to
// stop, both inclusive, lowest score first; negative ranks count from the
// end (-1 is the last). A missing key or an empty range is an empty slice.
func (e *Engine) ZRange(ctx context.Context, key string, start, stop int64) *futures.Future[[]string] {
	cmd := e.b.Zrange().Key(key).Min(strconv.FormatInt(start, 10)).Max(strconv.FormatInt(stop, 10)).Build()
	return submit(e, ctx, key, cmd, decodeStrings)
}

// ZRangeWithScores is ZRange returning each member with its score. A
// missing key or an empty range is an empty slice.
func (e *Engine) ZRangeWithScores(ctx context.Context, key string, start, stop int64) *futures.Future[[]Z] {
	cmd := e.b.Zrange().Key(key).Min(strconv.FormatInt(start, 10)).Max(strconv.FormatInt(stop, 10)).Withscores().Build()
	return submit(e, ctx, key, cmd, decodeZs)
}

// ZCard returns the number of members of the sorted set at key (0 when
// missing).
func (e *Engine) ZCard(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Zcard().Key(key).Build(), decodeInt64)
}

// ZRank returns the rank of member in the sorted set at key, 0 for the
// lowest score; the future fails with ErrNil when the member or the key
// does not exist.
func (e *Engine) ZRank(ctx context.Context, key, member string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Zrank().Key(key).Member(member).Build(), decodeInt64)
}
