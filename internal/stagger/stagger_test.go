package stagger

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// The first answer wins; the sources after it are not asked.
func TestFirstAnswerWins(t *testing.T) {
	won, out := First(context.Background(), 3, time.Hour, func(_ context.Context, i int) (int, error) { return i * 10, nil })
	if won != 0 || out[0].V != 0 || !out[0].Asked || out[1].Asked || out[2].Asked {
		t.Fatalf("won %d, out %+v; want 0, only the first asked", won, out)
	}
}

// A failure asks the next source at once, without waiting for the gap.
func TestFailureAsksNextAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	won, out := First(ctx, 3, time.Hour, func(_ context.Context, i int) (string, error) {
		if i < 2 {
			return "", fmt.Errorf("source %d down", i)
		}
		return "ok", nil
	})
	if won != 2 || out[2].V != "ok" || out[0].Err == nil || out[1].Err == nil {
		t.Fatalf("won %d, out %+v; want 2 after two failures", won, out)
	}
	if ctx.Err() != nil {
		t.Fatal("waited for the gap after a failure")
	}
}

// A source that never answers delays the next by the gap only, and is
// cancelled and waited for once another wins; an earlier source that
// answers while a later one runs still wins.
func TestSilentSourceStaggered(t *testing.T) {
	var ended atomic.Int32
	start := time.Now()
	won, out := First(context.Background(), 2, 20*time.Millisecond, func(ctx context.Context, i int) (int, error) {
		defer ended.Add(1)
		if i == 0 {
			<-ctx.Done() // frozen
			return 0, ctx.Err()
		}
		return 1, nil
	})
	if won != 1 || !errors.Is(out[0].Err, context.Canceled) {
		t.Fatalf("won %d, out %+v; want 1, the silent one cancelled", won, out)
	}
	if ended.Load() != 2 {
		t.Fatalf("%d of 2 asks ended when First returned", ended.Load())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}

	release := make(chan struct{})
	won, out = First(context.Background(), 2, 10*time.Millisecond, func(ctx context.Context, i int) (int, error) {
		if i == 0 {
			<-release // answers once the second is asked
			return 7, nil
		}
		close(release)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if won != 0 || out[0].V != 7 || !out[1].Asked {
		t.Fatalf("won %d, out %+v; want the first, answering while the second runs", won, out)
	}
}

// Without a winner every source is asked and its error kept.
func TestAllFail(t *testing.T) {
	won, out := First(context.Background(), 3, time.Millisecond, func(_ context.Context, i int) (int, error) {
		return i, fmt.Errorf("no %d", i)
	})
	if won != -1 {
		t.Fatalf("won %d, want -1", won)
	}
	for i, o := range out {
		if !o.Asked || o.Err == nil || o.Err.Error() != fmt.Sprintf("no %d", i) || o.V != i {
			t.Fatalf("out[%d] = %+v", i, o)
		}
	}
	if won, out := First(context.Background(), 0, time.Millisecond, func(context.Context, int) (int, error) { return 0, nil }); won != -1 || len(out) != 0 {
		t.Fatalf("no source: won %d, out %v", won, out)
	}
}

// When ctx ends, the sources asked end with it and are waited for; those
// whose turn had not come are not asked.
func TestContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var asked, ended atomic.Int32
	won, out := First(ctx, 1000, 10*time.Millisecond, func(ctx context.Context, i int) (int, error) {
		asked.Add(1)
		defer ended.Add(1)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if won != -1 {
		t.Fatalf("won %d", won)
	}
	if a, e := asked.Load(), ended.Load(); a == 0 || a != e || a >= 1000 {
		t.Fatalf("%d asked, %d ended when First returned; want some, all ended", a, e)
	}
	n := 0
	for _, o := range out {
		if o.Asked {
			n++
			if !errors.Is(o.Err, context.DeadlineExceeded) {
				t.Fatalf("an asked source: %+v, want DeadlineExceeded", o)
			}
		}
	}
	if n != int(asked.Load()) || out[len(out)-1].Asked {
		t.Fatalf("%d marked asked, %d asked", n, asked.Load())
	}
}
