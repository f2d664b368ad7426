package otelvactor

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/mailbox"
)

// points returns the int64 points of a metric, by the encoding of their
// attribute sets; each set must appear once.
func points(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	add := func(dps []metricdata.DataPoint[int64]) {
		for _, p := range dps {
			k := p.Attributes.Encoded(attribute.DefaultEncoder())
			if _, dup := out[k]; dup {
				t.Errorf("%s: two points for %s", name, k)
			}
			out[k] = p.Value
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				add(d.DataPoints)
			case metricdata.Gauge[int64]:
				add(d.DataPoints)
			default:
				t.Fatalf("%s: %T", name, m.Data)
			}
		}
	}
	return out
}

// Several engines on one Hook: per attribute set one observation, counts
// and depths summed (a connection actor without a working connection
// counts no connection: it was counted idle during an outage), a node's breaker state the worst of the engines',
// the dedicated pools under pool names of their own, and the dropped
// events of an engine unregistered kept (the counter does not go back).
// Observing an engine twice counts it once.
func TestObserveAggregatesEngines(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	h, err := New(WithMeterProvider(mp), WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Observe(nil); err == nil {
		t.Error("Observe(nil) did not fail")
	}
	const a, b = "10.0.0.1:6379", "10.0.0.2:6379"
	one := engine.Stats{
		Conns: []actors.ConnStats{
			{Addr: a, Connected: true, InFlight: 2, Mailbox: mailbox.Stats{Queued: 5}},
			{Addr: a, Connected: true},
			{Addr: a, Held: 4}, // its connection failed: counts none, its held commands are pending
		},
		Nodes:          []engine.NodeStats{{Addr: a, Breaker: "open"}, {Addr: b, Breaker: "closed"}},
		DedicatedConns: []engine.PoolStats{{Addr: a, Pool: engine.PoolTx, Idle: 1, Used: 2}},
		HookDropped:    7,
	}
	two := engine.Stats{
		Conns:          []actors.ConnStats{{Addr: a, Connected: true, Mailbox: mailbox.Stats{Queued: 3}}},
		Nodes:          []engine.NodeStats{{Addr: a, Breaker: "closed"}, {Addr: b, Breaker: "half-open"}},
		DedicatedConns: []engine.PoolStats{{Addr: a, Pool: engine.PoolTx, Idle: 4}, {Addr: a, Pool: engine.PoolDedicated, Used: 1}},
		HookDropped:    4,
	}
	r1 := h.observe("one", func() engine.Stats { return one })
	r1again := h.observe("one", func() engine.Stats { return one })
	r2 := h.observe("two", func() engine.Stats { return two })
	pool := func(name, state string) string {
		return "db.client.connection.pool.name=" + name + ",db.client.connection.state=" + state + ",db.system.name=valkey"
	}
	check := func(metric string, want map[string]int64) {
		t.Helper()
		got := points(t, reader, metric)
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", metric, got, want)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s{%s} = %d (present %t), want %d", metric, k, g, ok, v)
			}
		}
	}
	check("db.client.connection.count", map[string]int64{
		pool(a, "idle"): 2, pool(a, "used"): 1,
		pool(a+"/tx", "idle"): 5, pool(a+"/tx", "used"): 2,
		pool(a+"/dedicated", "idle"): 0, pool(a+"/dedicated", "used"): 1,
	})
	check("vactor.mailbox.depth", map[string]int64{"db.client.connection.pool.name=" + a: 8})
	check("db.client.connection.pending_requests", map[string]int64{"db.client.connection.pool.name=" + a + ",db.system.name=valkey": 14})
	check("vactor.breaker.state", map[string]int64{
		"server.address=10.0.0.1,server.port=6379": 2, // open in one
		"server.address=10.0.0.2,server.port=6379": 1, // half-open in two
	})
	check("vactor.hooks.dropped", map[string]int64{"": 11})
	// One registration of "one" gone: still observed.
	if err := r1.Unregister(); err != nil {
		t.Fatal(err)
	}
	check("vactor.hooks.dropped", map[string]int64{"": 11})
	r1again.Unregister()
	r1again.Unregister() // idempotent
	check("vactor.breaker.state", map[string]int64{
		"server.address=10.0.0.1,server.port=6379": 0,
		"server.address=10.0.0.2,server.port=6379": 1,
	})
	check("vactor.hooks.dropped", map[string]int64{"": 11})
	r2.Unregister()
	check("vactor.hooks.dropped", map[string]int64{"": 11})
	check("db.client.connection.count", map[string]int64{})
}

// An engine observed, unregistered and observed again counts each of its
// dropped events once: the counter goes on from what was counted, it
// does not add the engine's (cumulative) HookDropped on top again.
// Before, the second Observe reported 7 + 9 = 16 for 9 events dropped.
func TestObserveAgainCountsDroppedOnce(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	h, err := New(WithMeterProvider(mp), WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dropped := uint64(7)
	stats := func() engine.Stats {
		mu.Lock()
		defer mu.Unlock()
		return engine.Stats{HookDropped: dropped}
	}
	setDropped := func(n uint64) { mu.Lock(); dropped = n; mu.Unlock() }
	want := func(n int64) {
		t.Helper()
		if got := points(t, reader, "vactor.hooks.dropped")[""]; got != n {
			t.Fatalf("vactor.hooks.dropped = %d, want %d", got, n)
		}
	}
	r := h.observe("eng", stats)
	want(7)
	r.Unregister()
	want(7)
	setDropped(9) // 2 more while not observed
	r = h.observe("eng", stats)
	want(9)
	setDropped(12)
	want(12)
	r.Unregister()
	want(12)
	r = h.observe("eng", stats)
	want(12)
	r.Unregister()
	// Another engine adds its own.
	r2 := h.observe("other", func() engine.Stats { return engine.Stats{HookDropped: 5} })
	want(17)
	r2.Unregister()
	want(17)
}

// Observe keys engines by a weak pointer: an engine unregistered and
// collected is forgotten (the record of its counted drops does not keep
// it alive).
func TestObserveForgetsCollectedEngines(t *testing.T) {
	h, err := New(WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		func() {
			eng := new(engine.Engine)
			key := weak.Make(eng)
			r := h.observe(key, func() engine.Stats { return engine.Stats{HookDropped: 1} })
			r.Unregister()
		}()
	}
	runtime.GC()
	h.obsMu.Lock()
	h.sweepFrom = 0
	h.countedLocked("last", 0)
	n := len(h.counted)
	h.obsMu.Unlock()
	if n != 1 {
		t.Fatalf("%d engines remembered after they were collected, want 1 (the string key)", n)
	}
}
