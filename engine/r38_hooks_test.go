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

func (h *r38Exec) take() []hooks.Executed {
	time.Sleep(20 * time.Millisecond) // the bus delivers on its own goroutine
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.evs
	h.evs = nil
	return evs
}

// review-38: the Executed's start (Done - Duration) of a command fired at
// once lies between the caller's clock before the call and after its
// Await; a pipeline's commands start at Exec, not when added; no command
// of the engine's own is observed.
func r38CheckStarts(t *testing.T, eng *engine.Engine, h *r38Exec) {
	ctx := ctxT(t)
	time.Sleep(300 * time.Millisecond)
	h.take() // whatever New did
	for i := range 50 {
		before := time.Now()
		if _, err := eng.Set(ctx, "r38:k"+string(rune('a'+i%26)), "v", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		evs := h.take()
		if len(evs) != 1 {
			t.Fatalf("Set: %d Executed events, want 1: %+v", len(evs), evs)
		}
		start := evs[0].Done.Add(-evs[0].Duration)
		if start.Before(before.Add(-time.Millisecond)) || evs[0].Done.After(after.Add(time.Millisecond)) || evs[0].Duration <= 0 {
			t.Fatalf("Set %d: start %s done %s (duration %s); call from %s to %s", i, start.Format(time.StampMicro), evs[0].Done.Format(time.StampMicro), evs[0].Duration, before.Format(time.StampMicro), after.Format(time.StampMicro))
		}
	}
	p := eng.Pipeline()
	f1 := p.Set("r38:p1", "v", 0)
	f2 := p.Get("r38:p1")
	time.Sleep(300 * time.Millisecond)
	before := time.Now()
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = f1.Await(ctx)
	_, _ = f2.Await(ctx)
	evs := h.take()
	if len(evs) != 2 {
		t.Fatalf("pipeline: %d events: %+v", len(evs), evs)
	}
	for _, ev := range evs {
		if ev.Duration > 200*time.Millisecond || ev.Done.Add(-ev.Duration).Before(before.Add(-time.Millisecond)) {
			t.Fatalf("pipeline command %s: duration %s starts before Exec (%s)", ev.Name, ev.Duration, before.Format(time.StampMicro))
		}
	}
	// Idle: the engine's own commands (slot map reloads, health) unobserved.
	time.Sleep(2 * time.Second)
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("events while idle: %+v", evs)
	}
}

func TestR38HookStartStandalone(t *testing.T) {
	srv := valkeytest.Start(t)
	h := &r38Exec{}
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	cfg.Hooks = []hooks.Hook{h}
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	r38CheckStarts(t, eng, h)
}

func TestR38HookStartCluster(t *testing.T) {
	cl := valkeytest.StartClusterT(t)
	h := &r38Exec{}
	cfg := config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true)
	cfg.Hooks = []hooks.Hook{h}
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	r38CheckStarts(t, eng, h)
}

func TestR38HookStartSentinel(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	h := &r38Exec{}
	cfg := config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...)
	cfg.Hooks = []hooks.Hook{h}
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	r38CheckStarts(t, eng, h)
}
