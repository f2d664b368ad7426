package engine

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/valkey-io/valkey-go"

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
	for i, m := range members {
		if math.IsNaN(m.Score) {
			return fail[int64](zaddNaN(i, len(members)))
		}
	}
	sm := e.b.Zadd().Key(key).ScoreMember()
	for _, m := range members {
		sm = sm.ScoreMember(m.Score, m.Member)
	}
	return submit(e, ctx, key, sm.Build(), decodeInt64)
}

// zaddNaN is ZADD's error for the NaN score of members[i] (of n): it
// names the member by its position, not by its value, which a program's
// log of the error would show.
func zaddNaN(i, n int) error {
	return fmt.Errorf("%w: ZADD score of member %d of %d is NaN", ErrInvalidArgument, i+1, n)
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

// ZRevRank returns the rank of member in the sorted set at key, 0 for the
// highest score; the future fails with ErrNil when the member or the key
// does not exist.
func (e *Engine) ZRevRank(ctx context.Context, key, member string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Zrevrank().Key(key).Member(member).Build(), decodeInt64)
}

// ZCount returns how many members of the sorted set at key have a score
// between min and max, both inclusive unless written with a "(" ("(1.5"),
// "-inf" and "+inf" for no bound (0 when the key is missing). An empty
// bound fails with ErrInvalidArgument.
func (e *Engine) ZCount(ctx context.Context, key, min, max string) *futures.Future[int64] {
	cmd, err := zcountCmd(e.b, key, min, max)
	if err != nil {
		return fail[int64](err)
	}
	return submit(e, ctx, key, cmd, decodeInt64)
}

// zcountCmd builds ZCount's command (shared with Pipeline and Tx).
func zcountCmd(b valkey.Builder, key, min, max string) (valkey.Completed, error) {
	if min == "" || max == "" {
		return valkey.Completed{}, fmt.Errorf("%w: ZCOUNT needs a min and a max (\"-inf\" and \"+inf\" for none)", ErrInvalidArgument)
	}
	return b.Zcount().Key(key).Min(min).Max(max).Build(), nil
}

// revRanks is the range of ZRevRange and ZRevRangeWithScores.
func revRanks(key string, start, stop int64) ZRangeArgs {
	return ZRangeArgs{Key: key, Start: strconv.FormatInt(start, 10), Stop: strconv.FormatInt(stop, 10), Rev: true}
}

// ZRevRange is ZRange highest score first (ZRANGE ... REV).
func (e *Engine) ZRevRange(ctx context.Context, key string, start, stop int64) *futures.Future[[]string] {
	return e.ZRangeArgs(ctx, revRanks(key, start, stop))
}

// ZRevRangeWithScores is ZRangeWithScores highest score first: a
// leaderboard's top N is ZRevRangeWithScores(ctx, key, 0, N-1).
func (e *Engine) ZRevRangeWithScores(ctx context.Context, key string, start, stop int64) *futures.Future[[]Z] {
	return e.ZRangeArgsWithScores(ctx, revRanks(key, start, stop))
}

// ZRangeArgs is a range of a sorted set for Engine.ZRangeArgs: ZRANGE
// with its options.
type ZRangeArgs struct {
	Key string
	// Start and Stop bound the range, both inclusive: ranks ("0", "-1")
	// by default; scores with ByScore ("1.5", "(1.5" exclusive, "-inf",
	// "+inf"); members with ByLex ("[a" inclusive, "(a" exclusive, "-",
	// "+"). With Rev and ByScore or ByLex, Start is the higher bound, as
	// the server takes it ("+inf", "-inf"): sent as given, not swapped as
	// go-redis's ZRangeArgs swaps them (its "-inf", "+inf" with Rev
	// returns nothing here).
	Start, Stop string
	// ByScore or ByLex: Start and Stop are scores or members, not ranks.
	ByScore, ByLex bool
	// Rev orders the range highest score (or member) first.
	Rev bool
	// Offset and Count page a ByScore or ByLex range (LIMIT): skip
	// Offset members (not negative), return at most Count; Count 0 or
	// negative means every member after Offset.
	Offset, Count int64
}

// args returns ZRANGE's arguments after the key, or an error for options
// that do not go together.
func (a ZRangeArgs) args(withScores bool) ([]string, error) {
	switch {
	case a.Start == "" || a.Stop == "":
		return nil, fmt.Errorf("%w: ZRANGE needs a Start and a Stop", ErrInvalidArgument)
	case a.ByScore && a.ByLex:
		return nil, fmt.Errorf("%w: ZRANGE takes ByScore or ByLex, not both", ErrInvalidArgument)
	case (a.Offset != 0 || a.Count != 0) && !a.ByScore && !a.ByLex:
		return nil, fmt.Errorf("%w: ZRANGE's Offset and Count (LIMIT) need ByScore or ByLex", ErrInvalidArgument)
	case a.Offset < 0:
		return nil, fmt.Errorf("%w: ZRANGE's Offset must not be negative (got %d)", ErrInvalidArgument, a.Offset)
	case withScores && a.ByLex:
		return nil, fmt.Errorf("%w: ZRANGE BYLEX has no scores (use ZRangeArgs)", ErrInvalidArgument)
	}
	args := []string{a.Start, a.Stop}
	if a.ByScore {
		args = append(args, "BYSCORE")
	}
	if a.ByLex {
		args = append(args, "BYLEX")
	}
	if a.Rev {
		args = append(args, "REV")
	}
	if a.Offset != 0 || a.Count != 0 {
		count := a.Count
		if count == 0 {
			count = -1 // an Offset alone: the server's LIMIT offset 0 returns nothing (qa-AN AN1)
		}
		args = append(args, "LIMIT", strconv.FormatInt(a.Offset, 10), strconv.FormatInt(count, 10))
	}
	if withScores {
		args = append(args, "WITHSCORES")
	}
	return args, nil
}

// ZRangeArgs returns the members of a range of a sorted set (ZRANGE with
// BYSCORE, BYLEX, REV and LIMIT as a says). A missing key or an empty
// range is an empty slice; options that do not go together fail with
// ErrInvalidArgument, unsent.
func (e *Engine) ZRangeArgs(ctx context.Context, a ZRangeArgs) *futures.Future[[]string] {
	cmd, err := zrangeCmd(e.b, a, false)
	if err != nil {
		return fail[[]string](err)
	}
	return submit(e, ctx, a.Key, cmd, decodeStrings)
}

// zrangeCmd builds ZRangeArgs's command, with WITHSCORES when withScores
// (shared with Pipeline and Tx).
func zrangeCmd(b valkey.Builder, a ZRangeArgs, withScores bool) (valkey.Completed, error) {
	args, err := a.args(withScores)
	if err != nil {
		return valkey.Completed{}, err
	}
	return b.Arbitrary("ZRANGE").Keys(a.Key).Args(args...).ReadOnly(), nil
}

// ZRangeArgsWithScores is ZRangeArgs returning each member with its score
// (not with ByLex).
func (e *Engine) ZRangeArgsWithScores(ctx context.Context, a ZRangeArgs) *futures.Future[[]Z] {
	cmd, err := zrangeCmd(e.b, a, true)
	if err != nil {
		return fail[[]Z](err)
	}
	return submit(e, ctx, a.Key, cmd, decodeZs)
}
