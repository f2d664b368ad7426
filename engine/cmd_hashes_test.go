package engine_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// Helpers shared by the data-structure tests (hashes, lists, sets, sorted
// sets, scan, sync client). Prefixed with ds to stay apart from other
// test files' helpers.

// dsAwait waits for f and fails the test on error.
func dsAwait[T any](t testing.TB, ctx context.Context, what string, f *futures.Future[T]) T {
	t.Helper()
	v, err := f.Await(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// dsWantNil checks that f fails with ErrNil.
func dsWantNil[T any](t testing.TB, ctx context.Context, what string, f *futures.Future[T]) {
	t.Helper()
	if v, err := f.Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("%s = %v, %v; want ErrNil", what, v, err)
	}
}

// dsWantWrongType checks that f fails with a WRONGTYPE *ServerError.
func dsWantWrongType[T any](t testing.TB, ctx context.Context, what string, f *futures.Future[T]) {
	t.Helper()
	_, err := f.Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("%s err = %v (%T); want *ServerError WRONGTYPE", what, err, err)
	}
	if errors.Is(err, engine.ErrNil) {
		t.Fatalf("%s: WRONGTYPE also matches ErrNil", what)
	}
}

// dsWantInvalid checks that f was failed at once, before anything was
// queued, with ErrInvalidArgument.
func dsWantInvalid[T any](t testing.TB, what string, f *futures.Future[T]) {
	t.Helper()
	v, err, done := f.Result()
	if !done {
		t.Fatalf("%s: future not complete on return: the command was queued", what)
	}
	if !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("%s = %v, %v; want ErrInvalidArgument", what, v, err)
	}
}

// dsCalls returns how many times the server received cmd (lower case, as
// in INFO commandstats) since it started: calls, plus the calls rejected
// before running (wrong arity, ...) and those that failed.
func dsCalls(t testing.TB, ctx context.Context, eng *engine.Engine, cmd string) int64 {
	t.Helper()
	r := dsAwait(t, ctx, "INFO commandstats", eng.Do(ctx, "INFO", "commandstats"))
	s, err := r.String()
	if err != nil {
		t.Fatalf("INFO reply: %v", err)
	}
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		var total int64
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls", "rejected_calls", "failed_calls":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("INFO commandstats line %q: %v", line, err)
				}
				total += n
			}
		}
		return total
	}
	return 0
}

// dsWantNotSent checks that the invalid calls run by invalid left cmd's
// server-side count unchanged, and that the count does move for one valid
// call run by valid (so the check can fail).
func dsWantNotSent(t testing.TB, ctx context.Context, eng *engine.Engine, cmd string, invalid func(), valid func()) {
	t.Helper()
	before := dsCalls(t, ctx, eng, cmd)
	invalid()
	if got := dsCalls(t, ctx, eng, cmd); got != before {
		t.Fatalf("%s reached the server after invalid calls: count %d -> %d", cmd, before, got)
	}
	valid()
	if got := dsCalls(t, ctx, eng, cmd); got != before+1 {
		t.Fatalf("%s count after one valid call = %d, want %d", cmd, got, before+1)
	}
}

// dsSorted returns a sorted copy of s.
func dsSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestHashCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	if n := dsAwait(t, ctx, "HSET new", eng.HSet(ctx, "h", "a", "1", "b", "2")); n != 2 {
		t.Fatalf("HSET added %d, want 2", n)
	}
	// Overwriting a field is not an addition.
	if n := dsAwait(t, ctx, "HSET overwrite", eng.HSet(ctx, "h", "a", "10", "c", "3")); n != 1 {
		t.Fatalf("HSET overwrite added %d, want 1", n)
	}
	if v := dsAwait(t, ctx, "HGET", eng.HGet(ctx, "h", "a")); v != "10" {
		t.Fatalf("HGET a = %q, want 10", v)
	}
	dsWantNil(t, ctx, "HGET missing field", eng.HGet(ctx, "h", "nope"))
	dsWantNil(t, ctx, "HGET missing key", eng.HGet(ctx, "nokey", "a"))

	got := dsAwait(t, ctx, "HMGET", eng.HMGet(ctx, "h", "a", "nope", "c"))
	if len(got) != 3 || got[0] == nil || *got[0] != "10" || got[1] != nil || got[2] == nil || *got[2] != "3" {
		t.Fatalf("HMGET = %v, want [10 nil 3]", got)
	}
	if got := dsAwait(t, ctx, "HMGET missing key", eng.HMGet(ctx, "nokey", "a", "b")); len(got) != 2 || got[0] != nil || got[1] != nil {
		t.Fatalf("HMGET missing key = %v, want [nil nil]", got)
	}

	if ok := dsAwait(t, ctx, "HEXISTS", eng.HExists(ctx, "h", "b")); !ok {
		t.Fatal("HEXISTS b = false")
	}
	if ok := dsAwait(t, ctx, "HEXISTS missing", eng.HExists(ctx, "h", "nope")); ok {
		t.Fatal("HEXISTS nope = true")
	}
	if ok := dsAwait(t, ctx, "HEXISTS missing key", eng.HExists(ctx, "nokey", "a")); ok {
		t.Fatal("HEXISTS on missing key = true")
	}

	all := dsAwait(t, ctx, "HGETALL", eng.HGetAll(ctx, "h"))
	if want := map[string]string{"a": "10", "b": "2", "c": "3"}; !maps.Equal(all, want) {
		t.Fatalf("HGETALL = %v, want %v", all, want)
	}
	if all := dsAwait(t, ctx, "HGETALL missing", eng.HGetAll(ctx, "nokey")); len(all) != 0 {
		t.Fatalf("HGETALL missing = %v, want empty", all)
	}

	if n := dsAwait(t, ctx, "HLEN", eng.HLen(ctx, "h")); n != 3 {
		t.Fatalf("HLEN = %d, want 3", n)
	}
	if n := dsAwait(t, ctx, "HLEN missing", eng.HLen(ctx, "nokey")); n != 0 {
		t.Fatalf("HLEN missing = %d, want 0", n)
	}
	if k := dsSorted(dsAwait(t, ctx, "HKEYS", eng.HKeys(ctx, "h"))); !slices.Equal(k, []string{"a", "b", "c"}) {
		t.Fatalf("HKEYS = %v", k)
	}
	if v := dsSorted(dsAwait(t, ctx, "HVALS", eng.HVals(ctx, "h"))); !slices.Equal(v, []string{"10", "2", "3"}) {
		t.Fatalf("HVALS = %v", v)
	}
	if k := dsAwait(t, ctx, "HKEYS missing", eng.HKeys(ctx, "nokey")); len(k) != 0 {
		t.Fatalf("HKEYS missing = %v", k)
	}
	if v := dsAwait(t, ctx, "HVALS missing", eng.HVals(ctx, "nokey")); len(v) != 0 {
		t.Fatalf("HVALS missing = %v", v)
	}

	if n := dsAwait(t, ctx, "HINCRBY new", eng.HIncrBy(ctx, "h", "cnt", 5)); n != 5 {
		t.Fatalf("HINCRBY new field = %d, want 5", n)
	}
	if n := dsAwait(t, ctx, "HINCRBY", eng.HIncrBy(ctx, "h", "cnt", -7)); n != -2 {
		t.Fatalf("HINCRBY = %d, want -2", n)
	}
	if n := dsAwait(t, ctx, "HINCRBY missing key", eng.HIncrBy(ctx, "h2", "x", 1)); n != 1 {
		t.Fatalf("HINCRBY missing key = %d, want 1", n)
	}
	// HINCRBY on a field holding an integer string works; on text it is an
	// ERR server error.
	if n := dsAwait(t, ctx, "HINCRBY a", eng.HIncrBy(ctx, "h", "a", 1)); n != 11 {
		t.Fatalf("HINCRBY a = %d, want 11", n)
	}
	dsAwait(t, ctx, "HSET text", eng.HSet(ctx, "h", "text", "abc"))
	var se *engine.ServerError
	if _, err := eng.HIncrBy(ctx, "h", "text", 1).Await(ctx); !errors.As(err, &se) || se.Prefix != "ERR" {
		t.Fatalf("HINCRBY on text err = %v, want *ServerError ERR", err)
	}

	if n := dsAwait(t, ctx, "HDEL", eng.HDel(ctx, "h", "a", "nope", "b")); n != 2 {
		t.Fatalf("HDEL = %d, want 2", n)
	}
	if n := dsAwait(t, ctx, "HDEL missing key", eng.HDel(ctx, "nokey", "a")); n != 0 {
		t.Fatalf("HDEL missing key = %d, want 0", n)
	}
	dsWantNil(t, ctx, "HGET deleted", eng.HGet(ctx, "h", "a"))
}

func TestHashBinaryAndEmpty(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	key, field, val := "h\x00bin", "f\x00\xff", "v\x00\r\n\x00"
	if n := dsAwait(t, ctx, "HSET", eng.HSet(ctx, key, field, val, "", "")); n != 2 {
		t.Fatalf("HSET binary added %d, want 2", n)
	}
	if v := dsAwait(t, ctx, "HGET binary", eng.HGet(ctx, key, field)); v != val {
		t.Fatalf("HGET binary = %q, want %q", v, val)
	}
	// An empty value is a value, not nil.
	if v := dsAwait(t, ctx, "HGET empty", eng.HGet(ctx, key, "")); v != "" {
		t.Fatalf("HGET empty field = %q, want empty", v)
	}
	got := dsAwait(t, ctx, "HMGET", eng.HMGet(ctx, key, "", field))
	if got[0] == nil || *got[0] != "" || got[1] == nil || *got[1] != val {
		t.Fatalf("HMGET binary = %v", got)
	}
	all := dsAwait(t, ctx, "HGETALL", eng.HGetAll(ctx, key))
	if want := map[string]string{field: val, "": ""}; !maps.Equal(all, want) {
		t.Fatalf("HGETALL binary = %q, want %q", all, want)
	}
	if ok := dsAwait(t, ctx, "HEXISTS empty", eng.HExists(ctx, key, "")); !ok {
		t.Fatal("HEXISTS empty field = false")
	}
}

func TestHashWrongType(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsAwait(t, ctx, "SET", eng.Set(ctx, "str", "x", 0))
	dsWantWrongType(t, ctx, "HSET", eng.HSet(ctx, "str", "f", "v"))
	dsWantWrongType(t, ctx, "HGET", eng.HGet(ctx, "str", "f"))
	dsWantWrongType(t, ctx, "HMGET", eng.HMGet(ctx, "str", "f"))
	dsWantWrongType(t, ctx, "HDEL", eng.HDel(ctx, "str", "f"))
	dsWantWrongType(t, ctx, "HEXISTS", eng.HExists(ctx, "str", "f"))
	dsWantWrongType(t, ctx, "HGETALL", eng.HGetAll(ctx, "str"))
	dsWantWrongType(t, ctx, "HINCRBY", eng.HIncrBy(ctx, "str", "f", 1))
	dsWantWrongType(t, ctx, "HLEN", eng.HLen(ctx, "str"))
	dsWantWrongType(t, ctx, "HKEYS", eng.HKeys(ctx, "str"))
	dsWantWrongType(t, ctx, "HVALS", eng.HVals(ctx, "str"))
	// The connection is fine after error replies.
	if v := dsAwait(t, ctx, "GET", eng.Get(ctx, "str")); v != "x" {
		t.Fatalf("GET after WRONGTYPE = %q", v)
	}
}

func TestHashInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsWantNotSent(t, ctx, eng, "hset", func() {
		dsWantInvalid(t, "HSET no pairs", eng.HSet(ctx, "h"))
		dsWantInvalid(t, "HSET nil slice", eng.HSet(ctx, "h", []string(nil)...))
		dsWantInvalid(t, "HSET odd", eng.HSet(ctx, "h", "f"))
		dsWantInvalid(t, "HSET odd 3", eng.HSet(ctx, "h", "f", "v", "g"))
	}, func() {
		dsAwait(t, ctx, "HSET", eng.HSet(ctx, "other", "f", "v"))
	})
	dsWantNotSent(t, ctx, eng, "hmget", func() {
		dsWantInvalid(t, "HMGET no fields", eng.HMGet(ctx, "h"))
	}, func() {
		dsAwait(t, ctx, "HMGET", eng.HMGet(ctx, "h", "f"))
	})
	dsWantNotSent(t, ctx, eng, "hdel", func() {
		dsWantInvalid(t, "HDEL no fields", eng.HDel(ctx, "h"))
	}, func() {
		dsAwait(t, ctx, "HDEL", eng.HDel(ctx, "h", "f"))
	})
	if n := dsAwait(t, ctx, "EXISTS", eng.Exists(ctx, "h")); n != 0 {
		t.Fatalf("key h exists after invalid HSETs")
	}
}

// HSetNX, HIncrByFloat and IncrByFloat (qa-AL AL4: go-redis names a user
// reached for through Do).
func TestFloatCountersAndHSetNX(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if ok, err := eng.HSetNX(ctx, "h", "f", "1").Await(ctx); err != nil || !ok {
		t.Fatalf("HSetNX of a new field = %v, %v", ok, err)
	}
	if ok, err := eng.HSetNX(ctx, "h", "f", "2").Await(ctx); err != nil || ok {
		t.Fatalf("HSetNX of an existing field = %v, %v", ok, err)
	}
	if v, err := eng.HIncrByFloat(ctx, "h", "f", 0.25).Await(ctx); err != nil || v != 1.25 {
		t.Fatalf("HIncrByFloat = %v, %v; want 1.25", v, err)
	}
	if v, err := eng.IncrByFloat(ctx, "n", -1.5).Await(ctx); err != nil || v != -1.5 {
		t.Fatalf("IncrByFloat = %v, %v; want -1.5", v, err)
	}
	for _, err := range []error{
		eng.IncrByFloat(ctx, "n", math.NaN()).Err(ctx),
		eng.HIncrByFloat(ctx, "h", "f", math.Inf(1)).Err(ctx),
	} {
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("NaN or Inf increment: %v, want ErrInvalidArgument", err)
		}
	}
}

// HSetMap (go-redis's HSet from a map, qa-AL AL4's rest): on the engine,
// the sync Client, a Pipeline and a Tx; an empty or nil map is refused
// before anything is sent.
func TestHSetMap(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	m := map[string]string{"a": "1", "b": "2", "c": ""}
	if n := dsAwait(t, ctx, "HSetMap", eng.HSetMap(ctx, "hm", m)); n != 3 {
		t.Fatalf("HSetMap added %d, want 3", n)
	}
	if got := dsAwait(t, ctx, "HGETALL", eng.HGetAll(ctx, "hm")); !maps.Equal(got, m) {
		t.Fatalf("HGETALL = %v, want %v", got, m)
	}
	if n, err := eng.Sync().HSetMap(ctx, "hm", map[string]string{"a": "10", "d": "4"}); err != nil || n != 1 {
		t.Fatalf("Client.HSetMap = %d, %v; want 1 added", n, err)
	}
	p := eng.Pipeline()
	pf := p.HSetMap("hp", map[string]string{"x": "1"})
	tx := eng.Tx()
	tf := tx.HSetMap("ht", map[string]string{"y": "2", "z": "3"})
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dsAwait(t, ctx, "Pipeline HSetMap", pf); n != 1 {
		t.Fatalf("Pipeline HSetMap added %d, want 1", n)
	}
	if n := dsAwait(t, ctx, "Tx HSetMap", tf); n != 2 {
		t.Fatalf("Tx HSetMap added %d, want 2", n)
	}
	if v := dsAwait(t, ctx, "HGET", eng.HGet(ctx, "hm", "a")); v != "10" {
		t.Fatalf("HGET a = %q, want 10", v)
	}
	dsWantNotSent(t, ctx, eng, "hset", func() {
		dsWantInvalid(t, "HSetMap empty", eng.HSetMap(ctx, "h0", map[string]string{}))
		dsWantInvalid(t, "HSetMap nil", eng.HSetMap(ctx, "h0", nil))
	}, func() {
		dsAwait(t, ctx, "HSET", eng.HSet(ctx, "other", "f", "v"))
	})
	p = eng.Pipeline()
	if _, err := p.HSetMap("h0", nil).Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Pipeline HSetMap(nil): %v, want ErrInvalidArgument", err)
	}
	p.Discard()
}
