package engine_test

import (
	"slices"
	"testing"
)

func TestListCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	if n := dsAwait(t, ctx, "RPUSH", eng.RPush(ctx, "l", "b", "c")); n != 2 {
		t.Fatalf("RPUSH length = %d, want 2", n)
	}
	// LPUSH inserts one after the other: the last argument ends up first.
	if n := dsAwait(t, ctx, "LPUSH", eng.LPush(ctx, "l", "a2", "a1")); n != 4 {
		t.Fatalf("LPUSH length = %d, want 4", n)
	}
	if n := dsAwait(t, ctx, "RPUSH", eng.RPush(ctx, "l", "d", "c", "c")); n != 7 {
		t.Fatalf("RPUSH length = %d, want 7", n)
	}
	want := []string{"a1", "a2", "b", "c", "d", "c", "c"}
	if got := dsAwait(t, ctx, "LRANGE all", eng.LRange(ctx, "l", 0, -1)); !slices.Equal(got, want) {
		t.Fatalf("LRANGE 0 -1 = %q, want %q", got, want)
	}
	if got := dsAwait(t, ctx, "LRANGE mid", eng.LRange(ctx, "l", 1, 2)); !slices.Equal(got, []string{"a2", "b"}) {
		t.Fatalf("LRANGE 1 2 = %q", got)
	}
	if got := dsAwait(t, ctx, "LRANGE tail", eng.LRange(ctx, "l", -2, -1)); !slices.Equal(got, []string{"c", "c"}) {
		t.Fatalf("LRANGE -2 -1 = %q", got)
	}
	if got := dsAwait(t, ctx, "LRANGE out of range", eng.LRange(ctx, "l", 100, 200)); len(got) != 0 {
		t.Fatalf("LRANGE out of range = %q, want empty", got)
	}
	if got := dsAwait(t, ctx, "LRANGE missing", eng.LRange(ctx, "nokey", 0, -1)); len(got) != 0 {
		t.Fatalf("LRANGE missing key = %q, want empty", got)
	}
	if n := dsAwait(t, ctx, "LLEN", eng.LLen(ctx, "l")); n != 7 {
		t.Fatalf("LLEN = %d, want 7", n)
	}
	if n := dsAwait(t, ctx, "LLEN missing", eng.LLen(ctx, "nokey")); n != 0 {
		t.Fatalf("LLEN missing = %d, want 0", n)
	}

	// LREM: negative count removes from the tail.
	if n := dsAwait(t, ctx, "LREM -1", eng.LRem(ctx, "l", -1, "c")); n != 1 {
		t.Fatalf("LREM -1 c = %d, want 1", n)
	}
	if got := dsAwait(t, ctx, "LRANGE", eng.LRange(ctx, "l", 0, -1)); !slices.Equal(got, []string{"a1", "a2", "b", "c", "d", "c"}) {
		t.Fatalf("after LREM -1: %q", got)
	}
	if n := dsAwait(t, ctx, "LREM 1", eng.LRem(ctx, "l", 1, "c")); n != 1 {
		t.Fatalf("LREM 1 c = %d, want 1", n)
	}
	if got := dsAwait(t, ctx, "LRANGE", eng.LRange(ctx, "l", 0, -1)); !slices.Equal(got, []string{"a1", "a2", "b", "d", "c"}) {
		t.Fatalf("after LREM 1: %q", got)
	}
	dsAwait(t, ctx, "RPUSH", eng.RPush(ctx, "l", "b", "b"))
	if n := dsAwait(t, ctx, "LREM 0", eng.LRem(ctx, "l", 0, "b")); n != 3 {
		t.Fatalf("LREM 0 b = %d, want 3", n)
	}
	if n := dsAwait(t, ctx, "LREM none", eng.LRem(ctx, "l", 0, "zzz")); n != 0 {
		t.Fatalf("LREM absent value = %d, want 0", n)
	}
	if n := dsAwait(t, ctx, "LREM missing key", eng.LRem(ctx, "nokey", 0, "a")); n != 0 {
		t.Fatalf("LREM missing key = %d, want 0", n)
	}

	// Now a1 a2 d c.
	if v := dsAwait(t, ctx, "LPOP", eng.LPop(ctx, "l")); v != "a1" {
		t.Fatalf("LPOP = %q, want a1", v)
	}
	if v := dsAwait(t, ctx, "RPOP", eng.RPop(ctx, "l")); v != "c" {
		t.Fatalf("RPOP = %q, want c", v)
	}
	if v := dsAwait(t, ctx, "RPOP", eng.RPop(ctx, "l")); v != "d" {
		t.Fatalf("RPOP = %q, want d", v)
	}
	if v := dsAwait(t, ctx, "LPOP", eng.LPop(ctx, "l")); v != "a2" {
		t.Fatalf("LPOP = %q, want a2", v)
	}
	// Empty lists are deleted: popping again finds nothing.
	dsWantNil(t, ctx, "LPOP emptied", eng.LPop(ctx, "l"))
	dsWantNil(t, ctx, "RPOP emptied", eng.RPop(ctx, "l"))
	dsWantNil(t, ctx, "LPOP missing", eng.LPop(ctx, "nokey"))
	dsWantNil(t, ctx, "RPOP missing", eng.RPop(ctx, "nokey"))
	if n := dsAwait(t, ctx, "EXISTS", eng.Exists(ctx, "l")); n != 0 {
		t.Fatalf("emptied list still exists")
	}
}

func TestListBinaryAndEmpty(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	vals := []string{"\x00", "", "a\x00b", "\r\n", ""}
	if n := dsAwait(t, ctx, "RPUSH", eng.RPush(ctx, "l\x00", vals...)); n != int64(len(vals)) {
		t.Fatalf("RPUSH = %d", n)
	}
	if got := dsAwait(t, ctx, "LRANGE", eng.LRange(ctx, "l\x00", 0, -1)); !slices.Equal(got, vals) {
		t.Fatalf("LRANGE binary = %q, want %q", got, vals)
	}
	if n := dsAwait(t, ctx, "LREM empty", eng.LRem(ctx, "l\x00", 0, "")); n != 2 {
		t.Fatalf("LREM empty value = %d, want 2", n)
	}
	if v := dsAwait(t, ctx, "LPOP", eng.LPop(ctx, "l\x00")); v != "\x00" {
		t.Fatalf("LPOP = %q", v)
	}
	if v := dsAwait(t, ctx, "RPOP", eng.RPop(ctx, "l\x00")); v != "\r\n" {
		t.Fatalf("RPOP = %q", v)
	}
	// An empty element pops as "", not ErrNil.
	dsAwait(t, ctx, "LPUSH empty", eng.LPush(ctx, "e", ""))
	if v, err := eng.LPop(ctx, "e").Await(ctx); err != nil || v != "" {
		t.Fatalf("LPOP empty element = %q, %v; want \"\", nil", v, err)
	}
}

func TestListWrongType(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsAwait(t, ctx, "SET", eng.Set(ctx, "str", "x", 0))
	dsWantWrongType(t, ctx, "LPUSH", eng.LPush(ctx, "str", "a"))
	dsWantWrongType(t, ctx, "RPUSH", eng.RPush(ctx, "str", "a"))
	dsWantWrongType(t, ctx, "LPOP", eng.LPop(ctx, "str"))
	dsWantWrongType(t, ctx, "RPOP", eng.RPop(ctx, "str"))
	dsWantWrongType(t, ctx, "LRANGE", eng.LRange(ctx, "str", 0, -1))
	dsWantWrongType(t, ctx, "LLEN", eng.LLen(ctx, "str"))
	dsWantWrongType(t, ctx, "LREM", eng.LRem(ctx, "str", 0, "x"))
}

func TestListInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsWantNotSent(t, ctx, eng, "lpush", func() {
		dsWantInvalid(t, "LPUSH no values", eng.LPush(ctx, "l"))
	}, func() {
		dsAwait(t, ctx, "LPUSH", eng.LPush(ctx, "l", "x"))
	})
	dsWantNotSent(t, ctx, eng, "rpush", func() {
		dsWantInvalid(t, "RPUSH no values", eng.RPush(ctx, "l"))
		dsWantInvalid(t, "RPUSH nil slice", eng.RPush(ctx, "l", []string(nil)...))
	}, func() {
		dsAwait(t, ctx, "RPUSH", eng.RPush(ctx, "l", "y"))
	})
}
