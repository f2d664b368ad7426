package engine_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
)

// quietHook takes commands and panics at none.
type quietHook struct{}

func (quietHook) PostExecution(context.Context, hooks.Executed) {}

// The hook-panic line (MsgHookPanicked) names a hook by its index in
// Config.Hooks, as hooks.MsgHookPanicked says, also with Config.Logger
// set (every engine of these tests has one): the engine's own logging
// hook, first in the engine's list, does not shift it. Before, the
// logged index was one too high whenever Config.Logger was set.
func TestHookPanicIndex(t *testing.T) {
	var logs *logCheck
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		c, logs = withLogCheck(t, c.WithHooks(panicHook{"a"}, quietHook{}, panicHook{"b"}))
		return c
	})
	if logs == nil {
		t.Fatal("no log check: the test needs Config.Logger set")
	}
	ctx := ctxT(t)
	if err := eng.Set(ctx, "qa:panic", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"a": 0, "b": 2}
	got := map[string]bool{}
	for _, l := range logs.Lines() {
		if l.Msg != hooks.MsgHookPanicked {
			continue
		}
		p, _ := l.Attrs["panic"].(string)
		name, _, _ := strings.Cut(p, " ")
		i, ok := want[name]
		if !ok {
			t.Errorf("a panic line for an unknown hook: %s", l.Text)
			continue
		}
		got[name] = true
		if idx, _ := l.Attrs["index"].(float64); idx != i || l.Attrs["index"] == nil {
			t.Errorf("hook %q (Config.Hooks[%v]) logged with index %v: %s", name, i, l.Attrs["index"], l.Text)
		}
		if _, ok := l.Attrs["engine"]; ok {
			t.Errorf("a configured hook logged as the engine's own: %s", l.Text)
		}
	}
	if len(got) != len(want) {
		t.Errorf("panic lines for %v, want one for each of %v", got, want)
	}
}

// everyHook takes every event the hook goroutine delivers and counts the
// calls; it blocks in the PostExecution of the first ECHO until release
// is closed.
type everyHook struct {
	calls   atomic.Int64
	blocked atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h *everyHook) PostExecution(_ context.Context, ev hooks.Executed) {
	h.calls.Add(1)
	if ev.Name == "ECHO" && h.blocked.CompareAndSwap(false, true) {
		close(h.entered)
		<-h.release
	}
}
func (h *everyHook) PreConnection(hooks.Dial)                { h.calls.Add(1) }
func (h *everyHook) PostConnection(hooks.Dialed)             { h.calls.Add(1) }
func (h *everyHook) OnConnectionLost(hooks.Lost)             { h.calls.Add(1) }
func (h *everyHook) OnActorRestarted(hooks.Restart)          { h.calls.Add(1) }
func (h *everyHook) OnPipelineWritten(hooks.Pipeline)        { h.calls.Add(1) }
func (h *everyHook) OnPipelineAnswered(hooks.Pipeline)       { h.calls.Add(1) }
func (h *everyHook) OnMailboxFull(hooks.Backpressure)        { h.calls.Add(1) }
func (h *everyHook) OnBreakerChanged(hooks.BreakerChange)    { h.calls.Add(1) }
func (h *everyHook) OnRetryScheduled(hooks.Retry)            { h.calls.Add(1) }
func (h *everyHook) OnRedirected(hooks.Redirect)             { h.calls.Add(1) }
func (h *everyHook) OnSlotMapLoaded(hooks.SlotMap)           { h.calls.Add(1) }
func (h *everyHook) OnSentinelSwitched(hooks.SentinelSwitch) { h.calls.Add(1) }
func (h *everyHook) OnSubscriberEvent(hooks.Subscriber)      { h.calls.Add(1) }
func (h *everyHook) OnConsumerEvent(hooks.Consumer)          { h.calls.Add(1) }

// Stats.HookEvents counts the events delivered to the hooks, each once:
// when Close gives up on a hook stuck in the middle of a batch of events
// (here a pipeline's), the rest of that batch is counted in HookDropped
// only, not in HookEvents as well. The hook takes every event, last in
// Config.Hooks, so each event delivered is one of its calls. Before, the
// hook goroutine counted the whole batch in HookEvents when it took it,
// and the undelivered rest again in HookDropped.
func TestHookStatsCountEachEventOnce(t *testing.T) {
	defer engine.SetHookWait(300 * time.Millisecond)()
	h := &everyHook{entered: make(chan struct{}), release: make(chan struct{})}
	defer func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	}()
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(h) })
	ctx := ctxT(t)
	for range 20 {
		if err := eng.Set(ctx, "qa:count", "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Let the hook goroutine catch up and go idle, so that the
	// pipeline's events likely come to it in one batch (the case that
	// counted twice; split in batches they are counted right either
	// way, so the pause below only makes the test able to tell).
	deadline := time.Now().Add(10 * time.Second)
	for eng.Stats().HookEvents != uint64(h.calls.Load()) || h.calls.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the hooks did not catch up: %d events, %d calls", eng.Stats().HookEvents, h.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	p := eng.Pipeline()
	echo := p.Do("ECHO", "x")
	for range 50 {
		p.Set("qa:count", "w", 0)
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := echo.Err(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hook never got the ECHO")
	}
	if err := eng.Close(); err == nil {
		t.Fatal("Close did not report the stuck hook")
	}
	close(h.release)
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, calls := eng.Stats(), uint64(h.calls.Load())
		if st.HookEvents == calls && st.HookDropped > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HookEvents %d, HookDropped %d, the hook's calls %d: want HookEvents == calls (each event delivered counted once), the rest dropped",
				st.HookEvents, st.HookDropped, calls)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
