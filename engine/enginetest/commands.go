package enginetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// Commands: the typed commands of a rate limiter, a reliable queue and a
// leaderboard give the same results whatever the driver: a Script run by
// its digest and, after SCRIPT FLUSH, sent again whole (NOSCRIPT); Eval's
// table reply; BLPop failing with ErrNil at its timeout, BRPop and BLMove
// taking an element pushed while they wait; ZRevRangeWithScores and a
// ZRangeArgs page by score.
func Commands(t *testing.T, o Options) {
	eng := o.newEngine(t, o.Config(startServer(t)))
	ctx := ctxT(t)

	incr := engine.NewScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
	for want := int64(2); want <= 4; want += 2 {
		r, err := incr.Run(ctx, eng, []string{"n"}, "2").Await(ctx)
		if n, cerr := r.Int64(); err != nil || cerr != nil || n != want {
			t.Fatalf("Script.Run = %v (%v, %v), want %d", r, err, cerr, want)
		}
	}
	if _, err := eng.Do(ctx, "SCRIPT", "FLUSH").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := incr.Run(ctx, eng, []string{"n"}, "2").Await(ctx); err != nil || fmt.Sprint(r) != "6" {
		t.Fatalf("Script.Run after SCRIPT FLUSH = %v, %v; want 6 (EVAL after NOSCRIPT)", r, err)
	}
	r, err := eng.Eval(ctx, "return {1, 'two', {3}}", nil).Await(ctx)
	if err != nil || fmt.Sprint(r) != "[1 two [3]]" {
		t.Fatalf("Eval of a table = %v, %v", r, err)
	}

	if _, err := eng.BLPop(ctx, 20*time.Millisecond, "empty").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("BLPop of an empty list: %v, want ErrNil", err)
	}
	popped := eng.BRPop(ctx, 10*time.Second, "jobs")
	moved := eng.BLMove(ctx, "jobs2", "doing", engine.Right, engine.Left, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); !blocked(t, eng, 2); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("BRPop and BLMove not blocked on the server within 10s")
		}
	}
	if _, err := eng.LPush(ctx, "jobs", "j1").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.LPush(ctx, "jobs2", "j2").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if kv, err := popped.Await(ctx); err != nil || kv != (engine.KeyValue{Key: "jobs", Value: "j1"}) {
		t.Fatalf("BRPop = %+v, %v", kv, err)
	}
	if v, err := moved.Await(ctx); err != nil || v != "j2" {
		t.Fatalf("BLMove = %q, %v", v, err)
	}
	if v, err := eng.LIndex(ctx, "doing", 0).Await(ctx); err != nil || v != "j2" {
		t.Fatalf("LIndex doing 0 = %q, %v", v, err)
	}

	if _, err := eng.ZAdd(ctx, "lb", engine.Z{Member: "a", Score: 1}, engine.Z{Member: "b", Score: 2.5}, engine.Z{Member: "c", Score: 3}).Await(ctx); err != nil {
		t.Fatal(err)
	}
	top, err := eng.ZRevRangeWithScores(ctx, "lb", 0, 1).Await(ctx)
	if want := []engine.Z{{Member: "c", Score: 3}, {Member: "b", Score: 2.5}}; err != nil || !slices.Equal(top, want) {
		t.Fatalf("ZRevRangeWithScores = %v, %v; want %v", top, err, want)
	}
	page, err := eng.ZRangeArgs(ctx, engine.ZRangeArgs{Key: "lb", Start: "(1", Stop: "+inf", ByScore: true, Offset: 1, Count: 5}).Await(ctx)
	if err != nil || !slices.Equal(page, []string{"c"}) {
		t.Fatalf("ZRangeArgs by score = %v, %v; want [c]", page, err)
	}

	// INCRBYFLOAT past float64's range (the server computes in long
	// double): the increment runs and reads as ±Inf, on every driver
	// (qa-AW AW2: valkey-go's read failed with ErrReplyType).
	if _, err := eng.Set(ctx, "big", "1e308", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.IncrByFloat(ctx, "big", 1.7e308).Await(ctx); err != nil || !math.IsInf(v, 1) {
		t.Errorf("IncrByFloat past float64's range = %v, %v; want +Inf", v, err)
	}
	if s, err := eng.Get(ctx, "big").Await(ctx); err != nil || len(s) != 309 {
		t.Errorf("the value stored past float64's range: %d digits, %v; want 309 (the increment ran)", len(s), err)
	}
	if _, err := eng.HSet(ctx, "bigh", "f", "-1e308").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.HIncrByFloat(ctx, "bigh", "f", -1.7e308).Await(ctx); err != nil || !math.IsInf(v, -1) {
		t.Errorf("HIncrByFloat past float64's range = %v, %v; want -Inf", v, err)
	}
	if r, err := eng.Do(ctx, "INCRBYFLOAT", "big", "0").Await(ctx); err != nil {
		t.Error(err)
	} else if f, err := r.Float64(); err != nil || !math.IsInf(f, 1) {
		t.Errorf("Reply.Float64 of a number past float64's range = %v, %v; want +Inf", f, err)
	}
}

// blocked reports whether the server has n clients blocked.
func blocked(t *testing.T, eng *engine.Engine, n int) bool {
	t.Helper()
	ctx := ctxT(t)
	r, err := eng.Do(ctx, "INFO", "clients").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.String()
	return strings.Contains(s, fmt.Sprintf("blocked_clients:%d\r", n))
}
