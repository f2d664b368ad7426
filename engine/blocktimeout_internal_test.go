package engine

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// A blocking pop's server timeout ends before its ctx's deadline: half
// the time left, at most blockMargin, early (review-32b B1: with 50 ms
// the server, answering its timeouts up to 91 ms late, lost the race to
// the ctx on almost every idle poll).
func TestBlockTimeoutWithinDeadline(t *testing.T) {
	seconds := func(ctx context.Context, timeout time.Duration) float64 {
		t.Helper()
		s, err := blockTimeout(ctx, "BLPOP", timeout)
		if err != nil {
			t.Fatal(err)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("timeout %q: %v", s, err)
		}
		return f
	}
	deadline := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	for _, c := range []struct {
		name     string
		ctx      context.Context
		timeout  time.Duration
		min, max float64
	}{
		{"no deadline, for ever", context.Background(), 0, 0, 0},
		{"no deadline", context.Background(), 1500 * time.Millisecond, 1.5, 1.5},
		{"sub-millisecond", context.Background(), time.Microsecond, 0.001, 0.001},
		{"deadline in 2s, for ever", deadline(2 * time.Second), 0, 1.7, 1.8},
		{"deadline in 2s, timeout 1s", deadline(2 * time.Second), time.Second, 1, 1},
		{"deadline in 200ms", deadline(200 * time.Millisecond), 0, 0.05, 0.1},
		{"deadline passed", deadline(time.Nanosecond), 0, 0.001, 0.001},
		{"nil ctx", nil, 0, 0, 0},
	} {
		if got := seconds(c.ctx, c.timeout); got < c.min || got > c.max {
			t.Errorf("%s: timeout %vs, want %v..%v", c.name, got, c.min, c.max)
		}
	}
	if _, err := blockTimeout(context.Background(), "BLPOP", -time.Second); err == nil {
		t.Error("a negative timeout was taken")
	}
}
