package engine_test

import (
	"strconv"
	"testing"
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
