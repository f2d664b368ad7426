package otelvactor_test

// The gauges that read engine state or keep the last value of an event:
// what they report once consumers stop, and with one Hook on several
// engines.

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/otelvactor"
	"github.com/vactor-io/vactor/valkeytest"
)

// groups returns the vactor.stream.group of the points of a gauge.
func groups(ms map[string]metricdata.Metrics, name string) map[string]int64 {
	out := map[string]int64{}
	g, _ := ms[name].Data.(metricdata.Gauge[int64])
	for _, p := range g.DataPoints {
		out[attr(p.Attributes, "vactor.stream.group")] = p.Value
	}
	return out
}

// waitFor collects until ok holds, for up to 10 s.
func waitFor(t *testing.T, what string, reader interface {
	Collect(context.Context, *metricdata.ResourceMetrics) error
}, ok func(map[string]metricdata.Metrics) bool) map[string]metricdata.Metrics {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		ms := map[string]metricdata.Metrics{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				ms[m.Name] = m
			}
		}
		if ok(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s; last pending %v, lag %v", what,
				groups(ms, "vactor.stream.consumer.pending"), groups(ms, "vactor.stream.consumer.lag"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lagSeen records which consumers sent a Lag event.
type lagSeen struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (l *lagSeen) OnConsumerEvent(ev hooks.Consumer) {
	if ev.Kind == hooks.Lag {
		l.mu.Lock()
		l.seen[ev.Consumer] = true
		l.mu.Unlock()
	}
}

func (l *lagSeen) all(names ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range names {
		if !l.seen[n] {
			return false
		}
	}
	return true
}

// A consumer that stops (its Close, or the engine's) stops reporting its
// group's lag and pending count: before, the last values of a stopped
// consumer were reported for ever. A group another consumer still reads
// stays reported.
func TestConsumerLagEndsWhenConsumerStops(t *testing.T) {
	mp, reader, _, _ := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	lags := &lagSeen{seen: map[string]bool{}}
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(valkeytest.Start(t).Addr()).WithHooks(h, lags))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, s := range []string{"orders", "audit"} {
		if err := eng.XAdd(ctx, s, "f", "v").Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	opts := engine.ConsumeOptions{StartID: "0", ClaimInterval: 20 * time.Millisecond, Block: 20 * time.Millisecond}
	handler := func(context.Context, engine.XEntry) error { return nil }
	start := func(stream, group, name string) *engine.Consumer {
		c, err := eng.Consume(ctx, stream, group, name, handler, opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	w1 := start("orders", "workers", "w1")
	start("orders", "workers", "w2") // stopped by the engine's Close
	a1 := start("audit", "auditors", "a1")
	// Every consumer has reported its group's lag once (so w2 keeps
	// workers reported once w1 stops).
	deadline := time.Now().Add(10 * time.Second)
	for !lags.all("w1", "w2", "a1") {
		if time.Now().After(deadline) {
			t.Fatal("the consumers did not report their lag within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ms := collect(t, reader)
	for _, name := range []string{"vactor.stream.consumer.pending", "vactor.stream.consumer.lag"} {
		if g := groups(ms, name); len(g) != 2 {
			t.Fatalf("%s while the consumers run: %v, want workers and auditors", name, g)
		}
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	// a1's Stopped comes after w1's: once auditors is gone, w1's stop has
	// been taken too.
	ms = waitFor(t, "auditors no longer reported once its one consumer stopped", reader, func(ms map[string]metricdata.Metrics) bool {
		_, a := groups(ms, "vactor.stream.consumer.pending")["auditors"]
		_, l := groups(ms, "vactor.stream.consumer.lag")["auditors"]
		return !a && !l
	})
	if _, ok := groups(ms, "vactor.stream.consumer.pending")["workers"]; !ok {
		t.Error("workers no longer reported while w2 still reads the group")
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	// Close delivered every event: w2's Stopped too.
	ms = collect(t, reader)
	for _, name := range []string{"vactor.stream.consumer.pending", "vactor.stream.consumer.lag"} {
		if g := groups(ms, name); len(g) != 0 {
			t.Errorf("%s after the engine's Close: %v, want no point", name, g)
		}
	}
}
