package engine_test

// The hook events that observers keep state from reach them also when the
// hooks fall behind and the queue is full.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/otelvactor"
)

// gateHook blocks in PostExecution once armed, until released, and
// records the consumer events.
type gateHook struct {
	armed            atomic.Bool
	entered, release chan struct{}
	once             sync.Once

	mu        sync.Mutex
	consumers []hooks.Consumer
}

func (h *gateHook) PostExecution(context.Context, hooks.Executed) {
	if h.armed.Load() {
		h.once.Do(func() { close(h.entered) })
		<-h.release
	}
}

func (h *gateHook) OnConsumerEvent(ev hooks.Consumer) {
	h.mu.Lock()
	h.consumers = append(h.consumers, ev)
	h.mu.Unlock()
}

// lagGroups returns the groups vactor.stream.consumer.pending reports.
func lagGroups(t *testing.T, r *sdkmetric.ManualReader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "vactor.stream.consumer.pending" {
				for _, p := range g.DataPoints {
					v, _ := p.Attributes.Value("vactor.stream.group")
					out = append(out, v.AsString())
				}
			}
		}
	}
	return out
}

// A consumer that stops while the hooks are behind (the queue full, its
// other events dropped) still ends its lag series in otelvactor: its
// Stopped event is not dropped but delivered once the hook catches up.
// Before, the Stopped that found the queue full was dropped, and the
// stopped consumer's lag and pending were reported for ever.
func TestHookConsumerStoppedNotDroppedWhenFull(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	otel, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateHook{entered: make(chan struct{}), release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(gate.release) })
	defer release()
	const queue = 64
	restore := engine.SetHookQueue(queue)
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(gate, otel) })
	restore()
	ctx := ctxT(t)
	if err := eng.XAdd(ctx, "state:s", "f", "v").Err(ctx); err != nil {
		t.Fatal(err)
	}
	opts := engine.ConsumeOptions{StartID: "0", ClaimInterval: 20 * time.Millisecond, Block: 20 * time.Millisecond}
	c, err := eng.Consume(ctx, "state:s", "g", "c1", func(context.Context, engine.XEntry) error { return nil }, opts)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(lagGroups(t, reader)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the consumer's pending count was not reported within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Stall the hook goroutine, then fill the queue until events drop.
	gate.armed.Store(true)
	if err := eng.Get(ctx, "state:k").Err(ctx); err != nil && err != engine.ErrNil {
		t.Fatal(err)
	}
	<-gate.entered
	for deadline := time.Now().Add(10 * time.Second); eng.Stats().HookDropped == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no hook event dropped within 10s")
		}
		p := eng.Pipeline()
		fs := make([]*futures.Future[string], 0, queue)
		for range queue {
			fs = append(fs, p.Get("state:k"))
		}
		if err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			_, _ = f.Await(ctx)
		}
	}
	// The queue is full (only the stuck hook goroutine empties it): the
	// consumer's Stopped finds it so.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	if err := eng.Close(); err != nil { // delivers what was queued
		t.Fatal(err)
	}
	if g := lagGroups(t, reader); len(g) != 0 {
		t.Errorf("pending still reported for %v after the consumer stopped (%d events dropped)", g, eng.Stats().HookDropped)
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if n := len(gate.consumers); n == 0 || gate.consumers[n-1].Kind != hooks.Stopped {
		t.Fatalf("the consumer's events did not end with Stopped: %d events", n)
	}
	last := gate.consumers[len(gate.consumers)-1]
	if last.Instance == 0 || last.Node != srv.Addr() {
		t.Errorf("Stopped event node %q, instance %d; want %q and an instance", last.Node, last.Instance, srv.Addr())
	}
	for _, ev := range gate.consumers {
		if ev.Instance != last.Instance {
			t.Errorf("%v event of instance %d, the Stopped's is %d", ev.Kind, ev.Instance, last.Instance)
		}
	}
}
