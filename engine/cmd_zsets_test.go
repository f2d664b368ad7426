package engine_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

func TestSortedSetCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	n := dsAwait(t, ctx, "ZADD", eng.ZAdd(ctx, "z",
		engine.Z{Member: "b", Score: 2}, engine.Z{Member: "a", Score: 1}, engine.Z{Member: "c", Score: 3.5}))
	if n != 3 {
		t.Fatalf("ZADD = %d, want 3", n)
	}
	// Updating a score is not an addition.
	if n := dsAwait(t, ctx, "ZADD update", eng.ZAdd(ctx, "z", engine.Z{Member: "a", Score: 0.25}, engine.Z{Member: "d", Score: -1})); n != 1 {
		t.Fatalf("ZADD update+new = %d, want 1", n)
	}
	if s := dsAwait(t, ctx, "ZSCORE", eng.ZScore(ctx, "z", "a")); s != 0.25 {
		t.Fatalf("ZSCORE a = %v, want 0.25", s)
	}
	if s := dsAwait(t, ctx, "ZSCORE", eng.ZScore(ctx, "z", "c")); s != 3.5 {
		t.Fatalf("ZSCORE c = %v, want 3.5", s)
	}
	dsWantNil(t, ctx, "ZSCORE missing member", eng.ZScore(ctx, "z", "nope"))
	dsWantNil(t, ctx, "ZSCORE missing key", eng.ZScore(ctx, "nokey", "a"))

	// d(-1) a(0.25) b(2) c(3.5)
	if got := dsAwait(t, ctx, "ZRANGE", eng.ZRange(ctx, "z", 0, -1)); !slices.Equal(got, []string{"d", "a", "b", "c"}) {
		t.Fatalf("ZRANGE 0 -1 = %q", got)
	}
	if got := dsAwait(t, ctx, "ZRANGE", eng.ZRange(ctx, "z", 1, 2)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("ZRANGE 1 2 = %q", got)
	}
	if got := dsAwait(t, ctx, "ZRANGE", eng.ZRange(ctx, "z", -1, -1)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("ZRANGE -1 -1 = %q", got)
	}
	if got := dsAwait(t, ctx, "ZRANGE missing", eng.ZRange(ctx, "nokey", 0, -1)); len(got) != 0 {
		t.Fatalf("ZRANGE missing = %q, want empty", got)
	}
	want := []engine.Z{{"d", -1}, {"a", 0.25}, {"b", 2}, {"c", 3.5}}
	if got := dsAwait(t, ctx, "ZRANGE WITHSCORES", eng.ZRangeWithScores(ctx, "z", 0, -1)); !slices.Equal(got, want) {
		t.Fatalf("ZRANGE WITHSCORES = %v, want %v", got, want)
	}
	if got := dsAwait(t, ctx, "ZRANGE WITHSCORES", eng.ZRangeWithScores(ctx, "z", 2, 2)); !slices.Equal(got, want[2:3]) {
		t.Fatalf("ZRANGE 2 2 WITHSCORES = %v", got)
	}
	if got := dsAwait(t, ctx, "ZRANGE WITHSCORES missing", eng.ZRangeWithScores(ctx, "nokey", 0, -1)); len(got) != 0 {
		t.Fatalf("ZRANGE WITHSCORES missing = %v, want empty", got)
	}

	if n := dsAwait(t, ctx, "ZCARD", eng.ZCard(ctx, "z")); n != 4 {
		t.Fatalf("ZCARD = %d, want 4", n)
	}
	if n := dsAwait(t, ctx, "ZCARD missing", eng.ZCard(ctx, "nokey")); n != 0 {
		t.Fatalf("ZCARD missing = %d, want 0", n)
	}
	if r := dsAwait(t, ctx, "ZRANK", eng.ZRank(ctx, "z", "d")); r != 0 {
		t.Fatalf("ZRANK d = %d, want 0", r)
	}
	if r := dsAwait(t, ctx, "ZRANK", eng.ZRank(ctx, "z", "c")); r != 3 {
		t.Fatalf("ZRANK c = %d, want 3", r)
	}
	dsWantNil(t, ctx, "ZRANK missing member", eng.ZRank(ctx, "z", "nope"))
	dsWantNil(t, ctx, "ZRANK missing key", eng.ZRank(ctx, "nokey", "a"))

	if s := dsAwait(t, ctx, "ZINCRBY", eng.ZIncrBy(ctx, "z", 10, "a")); s != 10.25 {
		t.Fatalf("ZINCRBY a = %v, want 10.25", s)
	}
	if s := dsAwait(t, ctx, "ZINCRBY new", eng.ZIncrBy(ctx, "z", -2.5, "e")); s != -2.5 {
		t.Fatalf("ZINCRBY new member = %v, want -2.5", s)
	}
	if s := dsAwait(t, ctx, "ZINCRBY missing key", eng.ZIncrBy(ctx, "z2", 1.5, "x")); s != 1.5 {
		t.Fatalf("ZINCRBY missing key = %v, want 1.5", s)
	}
	if r := dsAwait(t, ctx, "ZRANK after ZINCRBY", eng.ZRank(ctx, "z", "a")); r != 4 {
		t.Fatalf("ZRANK a after ZINCRBY = %d, want 4 (last)", r)
	}

	if n := dsAwait(t, ctx, "ZREM", eng.ZRem(ctx, "z", "a", "nope", "e")); n != 2 {
		t.Fatalf("ZREM = %d, want 2", n)
	}
	if n := dsAwait(t, ctx, "ZREM missing key", eng.ZRem(ctx, "nokey", "a")); n != 0 {
		t.Fatalf("ZREM missing key = %d, want 0", n)
	}
	if got := dsAwait(t, ctx, "ZRANGE", eng.ZRange(ctx, "z", 0, -1)); !slices.Equal(got, []string{"d", "b", "c"}) {
		t.Fatalf("ZRANGE after ZREM = %q", got)
	}
}

func TestSortedSetScores(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	in := []engine.Z{
		{"neg-inf", math.Inf(-1)},
		{"tiny", 1e-300},
		{"third", 1.0 / 3},
		{"big", 1.5e300},
		{"inf", math.Inf(1)},
	}
	if n := dsAwait(t, ctx, "ZADD", eng.ZAdd(ctx, "zs", in...)); n != int64(len(in)) {
		t.Fatalf("ZADD = %d", n)
	}
	got := dsAwait(t, ctx, "ZRANGE WITHSCORES", eng.ZRangeWithScores(ctx, "zs", 0, -1))
	if !slices.Equal(got, in) {
		t.Fatalf("ZRANGE WITHSCORES = %v, want %v (scores must round-trip exactly)", got, in)
	}
	for _, z := range in {
		if s := dsAwait(t, ctx, "ZSCORE", eng.ZScore(ctx, "zs", z.Member)); s != z.Score {
			t.Fatalf("ZSCORE %s = %v, want %v", z.Member, s, z.Score)
		}
	}
	// inf + -inf is NaN: the server refuses it.
	var se *engine.ServerError
	if _, err := eng.ZIncrBy(ctx, "zs", math.Inf(-1), "inf").Await(ctx); !errors.As(err, &se) {
		t.Fatalf("ZINCRBY producing NaN err = %v, want *ServerError", err)
	}
}

func TestSortedSetBinaryAndEmpty(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	in := []engine.Z{{"", 1}, {"\x00", 2}, {"a\x00b", 3}, {"\xff", 4}}
	if n := dsAwait(t, ctx, "ZADD", eng.ZAdd(ctx, "z\x00", in...)); n != 4 {
		t.Fatalf("ZADD binary = %d, want 4", n)
	}
	if got := dsAwait(t, ctx, "ZRANGE WITHSCORES", eng.ZRangeWithScores(ctx, "z\x00", 0, -1)); !slices.Equal(got, in) {
		t.Fatalf("ZRANGE WITHSCORES binary = %+v, want %+v", got, in)
	}
	if got := dsAwait(t, ctx, "ZRANGE", eng.ZRange(ctx, "z\x00", 0, -1)); !slices.Equal(got, []string{"", "\x00", "a\x00b", "\xff"}) {
		t.Fatalf("ZRANGE binary = %q", got)
	}
	if s := dsAwait(t, ctx, "ZSCORE empty", eng.ZScore(ctx, "z\x00", "")); s != 1 {
		t.Fatalf("ZSCORE empty member = %v, want 1", s)
	}
	if r := dsAwait(t, ctx, "ZRANK binary", eng.ZRank(ctx, "z\x00", "a\x00b")); r != 2 {
		t.Fatalf("ZRANK binary = %d, want 2", r)
	}
	if n := dsAwait(t, ctx, "ZREM empty", eng.ZRem(ctx, "z\x00", "")); n != 1 {
		t.Fatalf("ZREM empty member = %d, want 1", n)
	}
	dsWantNil(t, ctx, "ZSCORE removed empty member", eng.ZScore(ctx, "z\x00", ""))
}

func TestSortedSetWrongType(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsAwait(t, ctx, "SADD", eng.SAdd(ctx, "set", "x"))
	dsWantWrongType(t, ctx, "ZADD", eng.ZAdd(ctx, "set", engine.Z{Member: "a", Score: 1}))
	dsWantWrongType(t, ctx, "ZREM", eng.ZRem(ctx, "set", "a"))
	dsWantWrongType(t, ctx, "ZSCORE", eng.ZScore(ctx, "set", "a"))
	dsWantWrongType(t, ctx, "ZINCRBY", eng.ZIncrBy(ctx, "set", 1, "a"))
	dsWantWrongType(t, ctx, "ZRANGE", eng.ZRange(ctx, "set", 0, -1))
	dsWantWrongType(t, ctx, "ZRANGE WITHSCORES", eng.ZRangeWithScores(ctx, "set", 0, -1))
	dsWantWrongType(t, ctx, "ZCARD", eng.ZCard(ctx, "set"))
	dsWantWrongType(t, ctx, "ZRANK", eng.ZRank(ctx, "set", "a"))
}

func TestSortedSetInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsWantNotSent(t, ctx, eng, "zadd", func() {
		dsWantInvalid(t, "ZADD no members", eng.ZAdd(ctx, "z"))
		dsWantInvalid(t, "ZADD NaN", eng.ZAdd(ctx, "z", engine.Z{Member: "a", Score: 1}, engine.Z{Member: "b", Score: math.NaN()}))
	}, func() {
		dsAwait(t, ctx, "ZADD", eng.ZAdd(ctx, "z", engine.Z{Member: "a", Score: 1}))
	})
	dsWantNotSent(t, ctx, eng, "zrem", func() {
		dsWantInvalid(t, "ZREM no members", eng.ZRem(ctx, "z"))
	}, func() {
		dsAwait(t, ctx, "ZREM", eng.ZRem(ctx, "z", "nope"))
	})
	dsWantNotSent(t, ctx, eng, "zincrby", func() {
		dsWantInvalid(t, "ZINCRBY NaN", eng.ZIncrBy(ctx, "z", math.NaN(), "a"))
	}, func() {
		dsAwait(t, ctx, "ZINCRBY", eng.ZIncrBy(ctx, "z", 1, "a"))
	})
	if got := dsAwait(t, ctx, "ZRANGE", eng.ZRangeWithScores(ctx, "z", 0, -1)); !slices.Equal(got, []engine.Z{{"a", 2}}) {
		t.Fatalf("ZRANGE after invalid calls = %v, want [{a 2}]", got)
	}
}

// A leaderboard's queries (qa-AL AL4: ZRANGE ... REV WITHSCORES through
// Do came back as pairs no Reply accessor read): the top N highest first,
// a member's rank from the top, ranges by score with LIMIT, by member,
// and counts by score.
func TestLeaderboardCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	board := []engine.Z{{Member: "ann", Score: 10}, {Member: "bob", Score: 30}, {Member: "cy", Score: 20}, {Member: "dee", Score: 30.5}}
	if _, err := eng.ZAdd(ctx, "lb", board...).Await(ctx); err != nil {
		t.Fatal(err)
	}
	top, err := eng.ZRevRangeWithScores(ctx, "lb", 0, 2).Await(ctx)
	if want := []engine.Z{{Member: "dee", Score: 30.5}, {Member: "bob", Score: 30}, {Member: "cy", Score: 20}}; err != nil || !slices.Equal(top, want) {
		t.Fatalf("top 3 = %v, %v; want %v", top, err, want)
	}
	if names, err := eng.ZRevRange(ctx, "lb", -1, -1).Await(ctx); err != nil || !slices.Equal(names, []string{"ann"}) {
		t.Fatalf("ZRevRange last = %v, %v", names, err)
	}
	if r, err := eng.ZRevRank(ctx, "lb", "bob").Await(ctx); err != nil || r != 1 {
		t.Fatalf("ZRevRank bob = %d, %v; want 1", r, err)
	}
	if _, err := eng.ZRevRank(ctx, "lb", "zed").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("ZRevRank of a missing member: %v, want ErrNil", err)
	}
	if n, err := eng.ZCount(ctx, "lb", "(20", "+inf").Await(ctx); err != nil || n != 2 {
		t.Fatalf("ZCount (20 +inf = %d, %v; want 2", n, err)
	}
	// Scores from 15 up, highest first, the second page of one.
	page, err := eng.ZRangeArgsWithScores(ctx, engine.ZRangeArgs{Key: "lb", Start: "+inf", Stop: "15", ByScore: true, Rev: true, Offset: 1, Count: 1}).Await(ctx)
	if want := []engine.Z{{Member: "bob", Score: 30}}; err != nil || !slices.Equal(page, want) {
		t.Fatalf("by score, page 2 = %v, %v; want %v", page, err, want)
	}
	if _, err := eng.ZAdd(ctx, "lex", engine.Z{Member: "a"}, engine.Z{Member: "b"}, engine.Z{Member: "c"}).Await(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := eng.ZRangeArgs(ctx, engine.ZRangeArgs{Key: "lex", Start: "(a", Stop: "+", ByLex: true}).Await(ctx); err != nil || !slices.Equal(m, []string{"b", "c"}) {
		t.Fatalf("by lex = %v, %v", m, err)
	}
	// An Offset alone skips that many and returns the rest (qa-AN AN1:
	// LIMIT 1 0 returned nothing).
	if m, err := eng.ZRangeArgs(ctx, engine.ZRangeArgs{Key: "lex", Start: "-", Stop: "+", ByLex: true, Offset: 1}).Await(ctx); err != nil || !slices.Equal(m, []string{"b", "c"}) {
		t.Fatalf("by lex, Offset 1 without Count = %v, %v; want [b c]", m, err)
	}
	for _, a := range []engine.ZRangeArgs{
		{Key: "lb", Start: "0"},
		{Key: "lb", Start: "0", Stop: "1", ByScore: true, ByLex: true},
		{Key: "lb", Start: "0", Stop: "1", Count: 2},
		{Key: "lb", Start: "0", Stop: "1", ByScore: true, Offset: -1, Count: 2},
	} {
		if _, err := eng.ZRangeArgs(ctx, a).Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("ZRangeArgs(%+v): %v, want ErrInvalidArgument", a, err)
		}
	}
	if _, err := eng.ZRangeArgsWithScores(ctx, engine.ZRangeArgs{Key: "lex", Start: "-", Stop: "+", ByLex: true}).Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("BYLEX WITHSCORES: %v, want ErrInvalidArgument", err)
	}
	if _, err := eng.ZCount(ctx, "lb", "", "1").Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("ZCount without min: %v", err)
	}
}
