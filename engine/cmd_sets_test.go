package engine_test

import (
	"slices"
	"testing"
)

func TestSetCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	if n := dsAwait(t, ctx, "SADD", eng.SAdd(ctx, "s", "a", "b", "c", "a")); n != 3 {
		t.Fatalf("SADD = %d, want 3 (a counted once)", n)
	}
	if n := dsAwait(t, ctx, "SADD again", eng.SAdd(ctx, "s", "c", "d")); n != 1 {
		t.Fatalf("SADD existing+new = %d, want 1", n)
	}
	if got := dsSorted(dsAwait(t, ctx, "SMEMBERS", eng.SMembers(ctx, "s"))); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("SMEMBERS = %q", got)
	}
	if got := dsAwait(t, ctx, "SMEMBERS missing", eng.SMembers(ctx, "nokey")); len(got) != 0 {
		t.Fatalf("SMEMBERS missing = %q, want empty", got)
	}
	if ok := dsAwait(t, ctx, "SISMEMBER", eng.SIsMember(ctx, "s", "b")); !ok {
		t.Fatal("SISMEMBER b = false")
	}
	if ok := dsAwait(t, ctx, "SISMEMBER absent", eng.SIsMember(ctx, "s", "z")); ok {
		t.Fatal("SISMEMBER z = true")
	}
	if ok := dsAwait(t, ctx, "SISMEMBER missing key", eng.SIsMember(ctx, "nokey", "a")); ok {
		t.Fatal("SISMEMBER on missing key = true")
	}
	if n := dsAwait(t, ctx, "SCARD", eng.SCard(ctx, "s")); n != 4 {
		t.Fatalf("SCARD = %d, want 4", n)
	}
	if n := dsAwait(t, ctx, "SCARD missing", eng.SCard(ctx, "nokey")); n != 0 {
		t.Fatalf("SCARD missing = %d, want 0", n)
	}
	if n := dsAwait(t, ctx, "SREM", eng.SRem(ctx, "s", "a", "z", "b")); n != 2 {
		t.Fatalf("SREM = %d, want 2", n)
	}
	if n := dsAwait(t, ctx, "SREM missing key", eng.SRem(ctx, "nokey", "a")); n != 0 {
		t.Fatalf("SREM missing key = %d, want 0", n)
	}
	if got := dsSorted(dsAwait(t, ctx, "SMEMBERS", eng.SMembers(ctx, "s"))); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("SMEMBERS after SREM = %q", got)
	}
}

func TestSetBinaryAndEmpty(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	members := []string{"", "\x00", "\x00\x00", "a\x00b", "\xff\xfe"}
	if n := dsAwait(t, ctx, "SADD", eng.SAdd(ctx, "s\x00", members...)); n != int64(len(members)) {
		t.Fatalf("SADD binary = %d, want %d", n, len(members))
	}
	if got := dsSorted(dsAwait(t, ctx, "SMEMBERS", eng.SMembers(ctx, "s\x00"))); !slices.Equal(got, dsSorted(members)) {
		t.Fatalf("SMEMBERS binary = %q, want %q", got, dsSorted(members))
	}
	for _, m := range members {
		if ok := dsAwait(t, ctx, "SISMEMBER", eng.SIsMember(ctx, "s\x00", m)); !ok {
			t.Fatalf("SISMEMBER %q = false", m)
		}
	}
	if ok := dsAwait(t, ctx, "SISMEMBER", eng.SIsMember(ctx, "s\x00", "a")); ok {
		t.Fatal(`SISMEMBER "a" = true ("a\x00b" must not match a prefix)`)
	}
	if n := dsAwait(t, ctx, "SREM empty", eng.SRem(ctx, "s\x00", "")); n != 1 {
		t.Fatalf("SREM empty member = %d, want 1", n)
	}
	if ok := dsAwait(t, ctx, "SISMEMBER empty", eng.SIsMember(ctx, "s\x00", "")); ok {
		t.Fatal("empty member still there after SREM")
	}
}

func TestSetWrongType(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsAwait(t, ctx, "RPUSH", eng.RPush(ctx, "list", "x"))
	dsWantWrongType(t, ctx, "SADD", eng.SAdd(ctx, "list", "a"))
	dsWantWrongType(t, ctx, "SREM", eng.SRem(ctx, "list", "a"))
	dsWantWrongType(t, ctx, "SMEMBERS", eng.SMembers(ctx, "list"))
	dsWantWrongType(t, ctx, "SISMEMBER", eng.SIsMember(ctx, "list", "a"))
	dsWantWrongType(t, ctx, "SCARD", eng.SCard(ctx, "list"))
}

func TestSetInvalidArguments(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	dsWantNotSent(t, ctx, eng, "sadd", func() {
		dsWantInvalid(t, "SADD no members", eng.SAdd(ctx, "s"))
	}, func() {
		dsAwait(t, ctx, "SADD", eng.SAdd(ctx, "s", "m"))
	})
	dsWantNotSent(t, ctx, eng, "srem", func() {
		dsWantInvalid(t, "SREM no members", eng.SRem(ctx, "s"))
	}, func() {
		dsAwait(t, ctx, "SREM", eng.SRem(ctx, "s", "m"))
	})
}
