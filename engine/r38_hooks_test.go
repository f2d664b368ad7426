package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

type r38Exec struct {
	mu  sync.Mutex
	evs []hooks.Executed
}

func (h *r38Exec) PostExecution(_ context.Context, ev hooks.Executed) {
	h.mu.Lock()
	h.evs = append(h.evs, ev)
	h.mu.Unlock()
}

// take waits until n events have come (the hook goroutine delivers them
// after the futures complete) and returns them.
func (h *r38Exec) take(t *testing.T, n int) []hooks.Executed {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		if len(h.evs) >= n {
			evs := h.evs
			h.evs = nil
			h.mu.Unlock()
			if len(evs) != n {
				t.Fatalf("%d Executed events, want %d: %+v", len(evs), n, evs)
			}
			return evs
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d Executed events within 5 s", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// review-38: the Executed's start (Done - Duration) of a command fired at
// once lies between the caller's clock before the call and after its
// Await; a pipeline's commands start at Exec, not when added.
func r38CheckStarts(t *testing.T, eng *engine.Engine, h *r38Exec) {
	ctx := ctxT(t)
	for i := range 50 {
		before := time.Now()
		if _, err := eng.Set(ctx, "r38:k"+string(rune('a'+i%26)), "v", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		evs := h.take(t, 1)
		start := evs[0].Done.Add(-evs[0].Duration)
		if start.Before(before.Add(-time.Millisecond)) || evs[0].Done.After(after.Add(time.Millisecond)) || evs[0].Duration <= 0 {
			t.Fatalf("Set %d: start %s done %s (duration %s); call from %s to %s", i, start.Format(time.StampMicro), evs[0].Done.Format(time.StampMicro), evs[0].Duration, before.Format(time.StampMicro), after.Format(time.StampMicro))
		}
	}
	p := eng.Pipeline()
	f1 := p.Set("r38:p1", "v", 0)
	f2 := p.Get("r38:p1")
	time.Sleep(50 * time.Millisecond) // time between adding and Exec, which the start must not include
	before := time.Now()
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = f1.Await(ctx)
	_, _ = f2.Await(ctx)
	for _, ev := range h.take(t, 2) {
		if ev.Done.Add(-ev.Duration).Before(before.Add(-time.Millisecond)) {
			t.Fatalf("pipeline command %s: duration %s starts before Exec (%s)", ev.Name, ev.Duration, before.Format(time.StampMicro))
		}
	}
}

func TestR38HookStartStandalone(t *testing.T) {
	r38CheckStartsOn(t, config.DefaultConfig().WithAddrs(valkeytest.Start(t).Addr()))
}

func TestR38HookStartCluster(t *testing.T) {
	r38CheckStartsOn(t, config.DefaultConfig().WithAddrs(valkeytest.StartClusterT(t).Addrs()...).WithClusterMode(true))
}

func TestR38HookStartSentinel(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	r38CheckStartsOn(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...))
}

// r38CheckStartsOn runs r38CheckStarts on an engine over cfg with the
// recording hook.
func r38CheckStartsOn(t *testing.T, cfg config.Config) {
	h := &r38Exec{}
	cfg.Hooks = []hooks.Hook{h}
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	r38CheckStarts(t, eng, h)
}
