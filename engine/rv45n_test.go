package engine_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// INCRBYFLOAT and HINCRBYFLOAT store their sum rounded to 17 digits after
// the decimal point, and the future holds the float64 nearest to the
// stored text, as IncrByFloat's doc says (review rv45n: the doc said only
// "returns the new value", while 1e-18 added to 0 returns and stores 0).
// ZINCRBY's scores are doubles: no such rounding.
func TestIncrByFloatRoundsTo17Decimals(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	// An increment below 5e-18 adds nothing; one at 1.5e-17 rounds.
	for _, c := range []struct {
		incr      float64
		want      float64
		wantStore string
	}{
		{1e-18, 0, "0"},
		{5e-324, 0, "0"},
		{1e-17, 1e-17, "0.00000000000000001"},
		{1.5e-17, 2e-17, "0.00000000000000002"},
	} {
		key := "incr:" + strconv.FormatFloat(c.incr, 'g', -1, 64)
		if v := dsAwait(t, ctx, "IncrByFloat", eng.IncrByFloat(ctx, key, c.incr)); v != c.want {
			t.Errorf("IncrByFloat(missing, %g) = %g, want %g", c.incr, v, c.want)
		}
		if s := dsAwait(t, ctx, "GET", eng.Get(ctx, key)); s != c.wantStore {
			t.Errorf("IncrByFloat(missing, %g) stored %q, want %q", c.incr, s, c.wantStore)
		}
		if v := dsAwait(t, ctx, "HIncrByFloat", eng.HIncrByFloat(ctx, "h"+key, "f", c.incr)); v != c.want {
			t.Errorf("HIncrByFloat(missing, %g) = %g, want %g", c.incr, v, c.want)
		}
		if s := dsAwait(t, ctx, "HGET", eng.HGet(ctx, "h"+key, "f")); s != c.wantStore {
			t.Errorf("HIncrByFloat(missing, %g) stored %q, want %q", c.incr, s, c.wantStore)
		}
	}

	// Each call rounds the value it finds, through a Pipeline too.
	dsAwait(t, ctx, "SET", eng.Set(ctx, "small", "0.000000000000000001", 0))
	p := eng.Pipeline()
	f := p.IncrByFloat("small", 0)
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if v := dsAwait(t, ctx, "Pipeline IncrByFloat", f); v != 0 {
		t.Errorf("IncrByFloat(1e-18, 0) = %g, want 0", v)
	}
	if s := dsAwait(t, ctx, "GET", eng.Get(ctx, "small")); s != "0" {
		t.Errorf("IncrByFloat(1e-18, 0) stored %q, want \"0\"", s)
	}

	// A stored value float64 cannot hold reads as the nearest float64;
	// Get reads the server's text.
	dsAwait(t, ctx, "SET", eng.Set(ctx, "big", "9007199254740993", 0))
	if v := dsAwait(t, ctx, "IncrByFloat", eng.IncrByFloat(ctx, "big", 0)); v != 9007199254740992 {
		t.Errorf("IncrByFloat(2^53+1, 0) = %.0f, want 9007199254740992", v)
	}
	if s := dsAwait(t, ctx, "GET", eng.Get(ctx, "big")); s != "9007199254740993" {
		t.Errorf("IncrByFloat(2^53+1, 0) stored %q, want \"9007199254740993\"", s)
	}

	// ZINCRBY keeps what INCRBYFLOAT rounds away.
	if v := dsAwait(t, ctx, "ZIncrBy", eng.ZIncrBy(ctx, "z", 1e-20, "m")); v != 1e-20 {
		t.Errorf("ZIncrBy(missing, 1e-20) = %g, want 1e-20", v)
	}
}

// TTL rounds to the nearest second: a key with less than half a second
// left reads Remaining 0 with HasExpiry true, which the TTL type's doc
// says not to pass on to Set (0 there is no time to live: the copy
// would never expire). The SET and the TTL go in one Pipeline, so the
// server runs them back to back, well within the key's 450 ms.
func TestTTLRoundsToNearestSecond(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	p := eng.Pipeline()
	p.Set("soon", "v", 450*time.Millisecond)
	p.Set("later", "v", 1900*time.Millisecond)
	soon, later, psoon := p.TTL("soon"), p.TTL("later"), p.PTTL("soon")
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	r := dsAwait(t, ctx, "TTL soon", soon)
	if r != (engine.TTL{Remaining: 0, Exists: true, HasExpiry: true}) {
		t.Errorf("TTL of a key with 450ms left = %+v, want Remaining 0 with Exists and HasExpiry", r)
	}
	if got := dsAwait(t, ctx, "PTTL soon", psoon); !got.HasExpiry || got.Remaining <= 0 || got.Remaining > 450*time.Millisecond {
		t.Errorf("PTTL of a key with 450ms left = %+v, want (0, 450ms]", got)
	}
	if got := dsAwait(t, ctx, "TTL later", later); got.Remaining != 2*time.Second {
		t.Errorf("TTL of a key with 1.9s left = %+v, want Remaining 2s (rounded to the nearest)", got)
	}

	// What the TTL type's doc warns of: Set with that Remaining sets no
	// time to live at all.
	dsAwait(t, ctx, "SET copy", eng.Set(ctx, "copy", "v", r.Remaining))
	if got := dsAwait(t, ctx, "TTL copy", eng.TTL(ctx, "copy")); got != (engine.TTL{Exists: true}) {
		t.Errorf("Set with TTL's Remaining of 0 = %+v, want a key without expiry (the documented hazard)", got)
	}
}
