package otelvactor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/otelvactor"
	"github.com/vactor-io/vactor/valkeytest"
)

// providers returns a meter provider read by hand and a tracer provider
// that records every span.
// metricsHook returns a Hook without tracing on an in-memory meter
// provider, and the provider's reader.
func metricsHook(t *testing.T) (*otelvactor.Hook, *sdkmetric.ManualReader) {
	t.Helper()
	mp, reader, _, _ := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	return h, reader
}

func providers(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader, *sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	return mp, reader, tp, sr
}

// collect reads every metric, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum adds up the values of a counter's (or up-down counter's, or
// gauge's) points whose attributes include want.
func sum(t *testing.T, ms map[string]metricdata.Metrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Errorf("no metric %s", name)
		return 0
	}
	var n int64
	match := func(s attribute.Set) bool {
		for _, kv := range want {
			if v, ok := s.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Sum
			}
		}
	default:
		t.Errorf("%s: unexpected data %T", name, m.Data)
	}
	return n
}

// durations returns the db.client.operation.duration points.
func durations(t *testing.T, ms map[string]metricdata.Metrics) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := ms["db.client.operation.duration"]
	if !ok {
		t.Fatal("no db.client.operation.duration")
	}
	if m.Unit != "s" {
		t.Errorf("db.client.operation.duration unit %q, want s", m.Unit)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("db.client.operation.duration is a %T", m.Data)
	}
	return h.DataPoints
}

func attr(s attribute.Set, k string) string {
	v, ok := s.Value(attribute.Key(k))
	if !ok {
		return ""
	}
	return v.String()
}

// hookedEngine starts a server and an engine with h on it; the server
// stops with the test, the engine is the caller's to close.
func hookedEngine(t *testing.T, ctx context.Context, h *otelvactor.Hook) *engine.Engine {
	t.Helper()
	srv := valkeytest.Start(t)
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(h))
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// observed opens an engine with cfg and registers it with h.Observe;
// the registration and the engine end at cleanup.
func observed(t *testing.T, ctx context.Context, h *otelvactor.Hook, cfg config.Config) *engine.Engine {
	t.Helper()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	reg, err := h.Observe(eng)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Unregister() })
	return eng
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The scripted run in a cluster: N commands, one error reply, one
// redirect, a primary killed (its breaker opens, its actor restarts once
// it is back), asserted through an in-memory metric reader and span
// recorder.
func TestScriptedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	mp, reader, tp, sr := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	cfg := config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
		WithCircuitBreakerOpenTimeout(250 * time.Millisecond).WithHooks(h)
	ctx := ctxT(t)
	eng := observed(t, ctx, h, cfg)

	ctx, parent := tp.Tracer("test").Start(ctx, "request")
	const n = 30
	for i := range n {
		if err := eng.Set(ctx, fmt.Sprintf("otel:%d", i), "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	parent.End()
	// One error reply.
	var se *engine.ServerError
	if err := eng.LPush(ctx, "otel:0", "x").Err(ctx); !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("LPUSH on a string: %v", err)
	}
	// One redirect: move otel:1's slot.
	slot, err := c.KeySlot("otel:1")
	if err != nil {
		t.Fatal(err)
	}
	from, err := c.NodeForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	prims := c.Primaries()
	to := prims[0]
	if to == from {
		to = prims[1]
	}
	if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Get(ctx, "otel:1").Err(ctx); err != nil {
		t.Fatal(err)
	}
	// Kill the primary of otel:2 (no replica takes over): its breaker
	// opens; once it is back its actor restarts and serves again.
	slot2, _ := c.KeySlot("otel:2")
	victim, err := c.NodeForSlot(slot2)
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := eng.Get(cctx, "otel:2").Err(cctx)
		cancel()
		// A GET failed fast by the open breaker, not one held from the
		// lost connection and failed with it (also an outcome unknown,
		// labelled so: once the loop stopped at such a one and no GET was
		// labelled circuit_open).
		if errors.Is(err, engine.ErrCircuitOpen) && !errors.Is(err, engine.ErrOutcomeUnknown) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the breaker did not open (last error %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The breaker state gauge reads the open breaker (2) while the node is
	// down. It may already have moved to half-open (1) if a probe is due.
	if v := sum(t, collect(t, reader), "vactor.breaker.state", attribute.Int("server.port", victim.Port())); v != 2 && v != 1 {
		t.Errorf("vactor.breaker.state of the dead victim = %d, want 2 (open) or 1 (half-open)", v)
	}
	if err := c.RestartNode(victim); err != nil {
		t.Fatal(err)
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := eng.Get(cctx, "otel:2").Err(cctx)
		cancel()
		if err == nil || errors.Is(err, engine.ErrNil) { // the restarted node lost its data
			break
		}
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatalf("not serving after the restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The engine still runs: Observe's gauges. Commands given up on by
	// their context during the outage may still be queued or in flight
	// on the restarted node's actor for a moment (they complete through
	// it, unsent or answered): nothing may stay pending.
	var gauges map[string]metricdata.Metrics
	for drain := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		gauges = collect(t, reader)
		pending, queued := sum(t, gauges, "db.client.connection.pending_requests"), sum(t, gauges, "vactor.mailbox.depth")
		if pending == 0 && queued == 0 {
			break
		}
		if time.Now().After(drain) {
			t.Fatalf("db.client.connection.pending_requests = %d, vactor.mailbox.depth = %d 10 s after every command was awaited, want 0", pending, queued)
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	ms := collect(t, reader)

	// db.client.operation.duration
	var sets, wrongtype, open uint64
	for _, p := range durations(t, ms) {
		if !slices.Equal(p.Bounds, otelvactor.DurationBuckets) {
			t.Fatalf("bounds %v, want %v", p.Bounds, otelvactor.DurationBuckets)
		}
		if attr(p.Attributes, "db.system.name") != "valkey" || attr(p.Attributes, "db.namespace") != "0" {
			t.Errorf("attributes %v", p.Attributes.ToSlice())
		}
		switch op := attr(p.Attributes, "db.operation.name"); {
		case op == "SET" && attr(p.Attributes, "error.type") == "":
			sets += p.Count
			if attr(p.Attributes, "server.address") != valkeytest.Host || attr(p.Attributes, "server.port") == "" {
				t.Errorf("SET attributes %v", p.Attributes.ToSlice())
			}
			if p.Sum <= 0 {
				t.Errorf("SET durations sum %v", p.Sum)
			}
		case op == "LPUSH":
			if attr(p.Attributes, "error.type") != "WRONGTYPE" || attr(p.Attributes, "db.response.status_code") != "WRONGTYPE" {
				t.Errorf("LPUSH attributes %v", p.Attributes.ToSlice())
			}
			wrongtype += p.Count
		case op == "GET" && attr(p.Attributes, "error.type") == "circuit_open":
			open += p.Count
		}
	}
	if sets != n || wrongtype != 1 || open == 0 {
		t.Errorf("operation durations: %d SETs (want %d), %d WRONGTYPE (want 1), %d circuit_open (want some)", sets, n, wrongtype, open)
	}
	victimPort := attribute.Int("server.port", victim.Port())
	if v := sum(t, ms, "vactor.redirects", attribute.String("vactor.redirect.kind", hooks.RedirectMoved)); v < 1 {
		t.Errorf("vactor.redirects MOVED = %d", v)
	}
	if v := sum(t, ms, "vactor.breaker.transitions", attribute.String("vactor.breaker.to", "open"), victimPort); v < 1 {
		t.Errorf("vactor.breaker.transitions to open on the victim = %d", v)
	}
	if v := sum(t, ms, "vactor.breaker.transitions", attribute.String("vactor.breaker.to", "closed"), victimPort); v < 1 {
		t.Errorf("vactor.breaker.transitions to closed on the victim = %d", v)
	}
	if v := sum(t, ms, "vactor.actor.restarts", victimPort); v < 1 {
		t.Errorf("vactor.actor.restarts on the victim = %d", v)
	}
	if v := sum(t, ms, "vactor.connection.lost", victimPort); v < 1 {
		t.Errorf("vactor.connection.lost on the victim = %d", v)
	}
	if v := sum(t, ms, "vactor.pipeline.size"); v < n {
		t.Errorf("vactor.pipeline.size sums to %d commands, want at least %d", v, n)
	}
	if v := sum(t, ms, "vactor.slotmap.loads", attribute.String("vactor.result", "loaded")); v < 1 {
		t.Errorf("vactor.slotmap.loads = %d", v)
	}
	if m := ms["db.client.connection.create_time"]; m.Unit != "s" {
		t.Errorf("create_time unit %q", m.Unit)
	} else if h, _ := m.Data.(metricdata.Histogram[float64]); len(h.DataPoints) < 3 {
		t.Errorf("create_time: %d nodes, want 3", len(h.DataPoints))
	}
	if v := sum(t, gauges, "db.client.connection.count", attribute.String("db.client.connection.state", "idle")) +
		sum(t, gauges, "db.client.connection.count", attribute.String("db.client.connection.state", "used")); v != 3 {
		t.Errorf("db.client.connection.count = %d, want 3 (one per primary)", v)
	}
	if v := sum(t, gauges, "vactor.breaker.state", victimPort); v != 0 {
		t.Errorf("vactor.breaker.state of the victim = %d, want 0 (closed)", v)
	}
	for _, dp := range gauges["db.client.connection.count"].Data.(metricdata.Sum[int64]).DataPoints {
		if attr(dp.Attributes, "db.system.name") != "valkey" || !strings.HasPrefix(attr(dp.Attributes, "db.client.connection.pool.name"), valkeytest.Host+":") {
			t.Errorf("db.client.connection.count attributes %v", dp.Attributes.ToSlice())
		}
	}
	if m, ok := ms["vactor.pipeline.duration"].Data.(metricdata.Histogram[float64]); !ok || len(m.DataPoints) == 0 || m.DataPoints[0].Count == 0 || m.DataPoints[0].Sum <= 0 {
		t.Errorf("vactor.pipeline.duration: %+v", ms["vactor.pipeline.duration"].Data)
	}
	// The units, per the semantic conventions and UCUM annotations.
	units := map[string]string{
		"db.client.operation.duration": "s", "db.client.connection.create_time": "s",
		"db.client.connection.count": "{connection}", "db.client.connection.pending_requests": "{request}",
		"vactor.pipeline.size": "{command}", "vactor.pipeline.duration": "s", "vactor.mailbox.depth": "{command}",
		"vactor.breaker.state": "{state}", "vactor.breaker.transitions": "{transition}", "vactor.redirects": "{redirect}",
		"vactor.connection.lost": "{connection}", "vactor.actor.restarts": "{restart}", "vactor.slotmap.loads": "{load}",
		"vactor.hooks.dropped": "{event}",
	}
	for name, unit := range units {
		m, ok := ms[name]
		if !ok {
			m, ok = gauges[name]
		}
		if !ok {
			t.Errorf("no metric %s", name)
		} else if m.Unit != unit {
			t.Errorf("%s unit %q, want %q", name, m.Unit, unit)
		}
	}

	// Spans.
	spans := sr.Ended()
	var children int
	for _, s := range spans {
		if s.Name() != "SET" || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		children++
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("SET span kind %v", s.SpanKind())
		}
		as := attribute.NewSet(s.Attributes()...)
		if attr(as, "db.system.name") != "valkey" || attr(as, "db.operation.name") != "SET" || attr(as, "server.address") != valkeytest.Host ||
			attr(as, "db.namespace") != "0" || attr(as, "server.port") == "" {
			t.Errorf("SET span attributes %v", s.Attributes())
		}
		if _, ok := as.Value("db.query.text"); ok {
			t.Error("db.query.text set by default")
		}
		if seq, _ := as.Value("vactor.pipeline.seq"); seq.AsInt64() < 1 {
			t.Errorf("SET span without its pipeline: %v", s.Attributes())
		}
		if size, _ := as.Value("vactor.pipeline.size"); size.AsInt64() < 1 {
			t.Errorf("SET span without its pipeline's size: %v", s.Attributes())
		}
		if !s.EndTime().After(s.StartTime()) {
			t.Errorf("SET span from %v to %v", s.StartTime(), s.EndTime())
		}
	}
	if children != n {
		t.Errorf("%d SET spans children of the caller's span, want %d", children, n)
	}
	i := slices.IndexFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "LPUSH" })
	if i < 0 || spans[i].Status().Code != codes.Error {
		t.Fatalf("no failed LPUSH span")
	}
	if as := attribute.NewSet(spans[i].Attributes()...); attr(as, "error.type") != "WRONGTYPE" || attr(as, "db.response.status_code") != "WRONGTYPE" {
		t.Errorf("LPUSH span attributes %v", spans[i].Attributes())
	}
	if !slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
		as := attribute.NewSet(s.Attributes()...)
		v, _ := as.Value("vactor.redirects")
		return s.Name() == "GET" && v.AsInt64() >= 1 && attr(as, "server.port") == strconv.Itoa(to.Port())
	}) {
		t.Error("no redirected GET span on the slot's new owner")
	}
}

// WithQueryText shows the operation and one "?" per argument, never a key
// or value; WithSystemName changes db.system.name.
func TestQueryTextAndSystemName(t *testing.T) {
	mp, reader, tp, sr := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp),
		otelvactor.WithQueryText(), otelvactor.WithSystemName("redis"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eng := hookedEngine(t, ctx, h)
	if err := eng.Set(ctx, "secret-key", "secret-value", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	as := attribute.NewSet(spans[0].Attributes()...)
	if got := attr(as, "db.query.text"); got != "SET ? ?" {
		t.Errorf("db.query.text = %q", got)
	}
	if attr(as, "db.system.name") != "redis" {
		t.Errorf("db.system.name = %q", attr(as, "db.system.name"))
	}
	for _, p := range durations(t, collect(t, reader)) {
		if attr(p.Attributes, "db.system.name") != "redis" {
			t.Errorf("metric db.system.name = %q", attr(p.Attributes, "db.system.name"))
		}
	}
}

// Recording a command's duration allocates nothing once its series exists
// (the attribute set is cached, also when series alternate), without
// tracing, through the SDK's histogram and through a Producer.
func TestPostExecutionAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []otelvactor.Option
	}{
		{"sdk", nil},
		{"producer", []otelvactor.Option{otelvactor.WithProducer(otelvactor.NewProducer())}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mp, _, _, _ := providers(t)
			h, err := otelvactor.New(append(c.opts, otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing())...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			ev := hooks.Executed{Name: "GET", Node: "127.0.0.1:6379", Duration: time.Millisecond, Done: time.Now()}
			fail := hooks.Executed{Name: "LPUSH", Node: "127.0.0.1:6379", Duration: time.Millisecond, Err: &engine.ServerError{Prefix: "WRONGTYPE"}}
			h.PostExecution(ctx, ev)
			h.PostExecution(ctx, fail)
			if a := testing.AllocsPerRun(1000, func() {
				h.PostExecution(ctx, ev)
				h.PostExecution(ctx, fail)
			}); a != 0 {
				t.Fatalf("%v allocations per PostExecution, want 0", a)
			}
		})
	}
}

// A Producer reports db.client.operation.duration exactly as the
// MeterProvider's histogram does: two hooks on one engine, one recording
// through the SDK, one through a Producer, read the same commands into
// the same series, counts, buckets, sums and extremes; the producer's
// MeterProvider reports the metric once, and its counts are cumulative.
func TestProducerMatchesSDK(t *testing.T) {
	mpA, readerA, _, _ := providers(t)
	sdkHook, err := otelvactor.New(otelvactor.WithMeterProvider(mpA), otelvactor.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	p := otelvactor.NewProducer()
	readerB := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mpB := sdkmetric.NewMeterProvider(sdkmetric.WithReader(readerB))
	t.Cleanup(func() { _ = mpB.Shutdown(context.Background()) })
	prodHook, err := otelvactor.New(otelvactor.WithMeterProvider(mpB), otelvactor.WithoutTracing(), otelvactor.WithProducer(p))
	if err != nil {
		t.Fatal(err)
	}
	if ms := collectAll(t, readerB); len(ms[opDuration]) != 0 {
		t.Fatalf("%d duration metrics before any command, want none", len(ms[opDuration]))
	}

	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(sdkHook, prodHook))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const n = 200
	fs := make([]*futures.Future[struct{}], n)
	for i := range fs {
		fs[i] = eng.Set(ctx, fmt.Sprintf("prod:%d", i%7), "v", 0)
	}
	if _, err := futures.All(ctx, fs...); err != nil {
		t.Fatal(err)
	}
	if err := eng.LPush(ctx, "prod:0", "x").Err(ctx); err == nil {
		t.Fatal("LPUSH on a string succeeded")
	}
	if err := eng.Close(); err != nil { // delivers every hook event
		t.Fatal(err)
	}

	a, b := collectAll(t, readerA)[opDuration], collectAll(t, readerB)[opDuration]
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("duration metrics: sdk %d, producer %d; want 1 each", len(a), len(b))
	}
	if b[0].Unit != "s" || b[0].Description != a[0].Description {
		t.Errorf("producer metric unit %q description %q", b[0].Unit, b[0].Description)
	}
	ha, hb := a[0].Data.(metricdata.Histogram[float64]), b[0].Data.(metricdata.Histogram[float64])
	if hb.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("temporality %v", hb.Temporality)
	}
	key := func(p metricdata.HistogramDataPoint[float64]) string {
		return attr(p.Attributes, "db.operation.name") + "/" + attr(p.Attributes, "error.type")
	}
	want := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, p := range ha.DataPoints {
		want[key(p)] = p
	}
	if len(hb.DataPoints) != len(want) || len(want) != 2 {
		t.Fatalf("producer series %d, sdk series %d, want 2 (SET, LPUSH/WRONGTYPE)", len(hb.DataPoints), len(want))
	}
	var sets uint64
	for _, p := range hb.DataPoints {
		w, ok := want[key(p)]
		switch {
		case !ok:
			t.Errorf("producer series %v not in the sdk's", p.Attributes.ToSlice())
		case !p.Attributes.Equals(&w.Attributes):
			t.Errorf("attributes %v, sdk %v", p.Attributes.ToSlice(), w.Attributes.ToSlice())
		case p.Count != w.Count || p.Sum != w.Sum || !slices.Equal(p.BucketCounts, w.BucketCounts) || !slices.Equal(p.Bounds, w.Bounds):
			t.Errorf("%s: producer count %d sum %v buckets %v; sdk count %d sum %v buckets %v",
				key(p), p.Count, p.Sum, p.BucketCounts, w.Count, w.Sum, w.BucketCounts)
		}
		pmin, _ := p.Min.Value()
		pmax, _ := p.Max.Value()
		wmin, _ := w.Min.Value()
		wmax, _ := w.Max.Value()
		if pmin != wmin || pmax != wmax {
			t.Errorf("%s: producer min/max %v/%v, sdk %v/%v", key(p), pmin, pmax, wmin, wmax)
		}
		if key(p) == "SET/" {
			sets = p.Count
		}
	}
	if sets != n {
		t.Errorf("%d SETs counted, want %d", sets, n)
	}
	// Cumulative: a second collection reports the same totals.
	if b2 := collectAll(t, readerB)[opDuration]; len(b2) != 1 || b2[0].Data.(metricdata.Histogram[float64]).DataPoints[0].Count != hb.DataPoints[0].Count {
		t.Error("a second collection changed the totals")
	}
}

const opDuration = "db.client.operation.duration"

// collectAll reads every metric, by name, keeping duplicates.
func collectAll(t *testing.T, r *sdkmetric.ManualReader) map[string][]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = append(out[m.Name], m)
		}
	}
	return out
}

// A sentinel switch to a new primary is counted in
// vactor.sentinel.switches, per master name; the first primary found is
// not a switch. Failovers reached no metric before.
func TestSentinelSwitchesCounted(t *testing.T) {
	h, reader := metricsHook(t)
	h.OnSentinelSwitched(hooks.SentinelSwitch{Master: "mymaster", To: "10.0.0.1:6379"})
	h.OnSentinelSwitched(hooks.SentinelSwitch{Master: "mymaster", From: "10.0.0.1:6379", To: "10.0.0.2:6379"})
	h.OnSentinelSwitched(hooks.SentinelSwitch{Master: "other", From: "10.0.0.3:6379", To: "10.0.0.4:6379"})
	ms := collect(t, reader)
	if v := sum(t, ms, "vactor.sentinel.switches", attribute.String("vactor.sentinel.master", "mymaster")); v != 1 {
		t.Errorf("vactor.sentinel.switches{mymaster} = %d, want 1", v)
	}
	if v := sum(t, ms, "vactor.sentinel.switches"); v != 2 {
		t.Errorf("vactor.sentinel.switches = %d, want 2", v)
	}
	if m := ms["vactor.sentinel.switches"]; m.Unit != "{switch}" {
		t.Errorf("unit %q", m.Unit)
	}
}

// A resubscribe the server refused is counted in vactor.pubsub.refused,
// with error.type from the server's reply and the node's attributes.
func TestPubSubRefusedCounted(t *testing.T) {
	h, reader := metricsHook(t)
	noperm := &engine.ServerError{Prefix: "NOPERM", Message: "NOPERM this user has no permissions to access one of the channels used as arguments"}
	h.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Refused, Node: "10.0.0.1:6379", Instance: 1, Err: noperm})
	h.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Refused, Node: "10.0.0.1:6379", Instance: 2, Err: noperm})
	h.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Disconnected, Node: "10.0.0.1:6379", Instance: 1, Err: errors.New("EOF")})
	ms := collect(t, reader)
	if v := sum(t, ms, "vactor.pubsub.refused", attribute.String("error.type", "NOPERM"), attribute.String("server.address", "10.0.0.1")); v != 2 {
		t.Errorf("vactor.pubsub.refused{NOPERM, 10.0.0.1} = %d, want 2", v)
	}
	if m := ms["vactor.pubsub.refused"]; m.Unit != "{refusal}" {
		t.Errorf("unit %q", m.Unit)
	}
}

// seenSampler samples everything and keeps the attributes each span's
// sampling decision was given.
type seenSampler struct {
	mu   sync.Mutex
	seen [][]attribute.KeyValue
}

func (s *seenSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, slices.Clone(p.Attributes))
	return sdktrace.AlwaysSample().ShouldSample(p)
}

func (s *seenSampler) Description() string { return "seenSampler" }

// WithoutSamplerAttributes gives a span the same attributes as the
// default, after its start: the sampler sees none of them (by default it
// sees db.operation.name and the rest), the span costs 2 allocations
// less, one the sampler drops fewer still, and the pooled buffer the
// attributes are built in does not leak into earlier spans.
func TestWithoutSamplerAttributes(t *testing.T) {
	ev := hooks.Executed{Name: "get", Node: "127.0.0.1:6379", Duration: time.Millisecond, Done: time.Now(),
		Pipeline: 7, PipelineSize: 3, Retries: 1, Err: &engine.ServerError{Prefix: "WRONGTYPE"}}
	run := func(t *testing.T, opts ...otelvactor.Option) (span sdktrace.ReadOnlySpan, seen []attribute.KeyValue, allocs float64) {
		mp, _, _, _ := providers(t)
		sampler := &seenSampler{}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sampler))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		h, err := otelvactor.New(append(opts, otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp))...)
		if err != nil {
			t.Fatal(err)
		}
		h.PostExecution(context.Background(), ev)
		// More spans from the pooled attribute buffer: the first keeps
		// its own (the SDK copies them).
		other := ev
		other.Pipeline, other.Err = 8, nil
		for range 20 {
			h.PostExecution(context.Background(), other)
		}
		spans := sr.Ended()
		if len(spans) != 21 || len(sampler.seen) != 21 {
			t.Fatalf("%d spans ended, %d sampled, want 21 and 21", len(spans), len(sampler.seen))
		}
		if got := attr(attribute.NewSet(spans[0].Attributes()...), "vactor.pipeline.seq"); got != "7" {
			t.Errorf("the first span's vactor.pipeline.seq = %q after 20 more spans, want 7", got)
		}
		// The recorder keeps every span: count a provider's that drops them.
		tpNoop := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		t.Cleanup(func() { _ = tpNoop.Shutdown(context.Background()) })
		hn, err := otelvactor.New(append(opts, otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tpNoop))...)
		if err != nil {
			t.Fatal(err)
		}
		hn.PostExecution(context.Background(), ev)
		allocs = testing.AllocsPerRun(200, func() { hn.PostExecution(context.Background(), ev) })
		return spans[0], sampler.seen[0], allocs
	}
	def, defSeen, defAllocs := run(t)
	late, lateSeen, lateAllocs := run(t, otelvactor.WithoutSamplerAttributes())
	if d, l := attribute.NewSet(def.Attributes()...), attribute.NewSet(late.Attributes()...); !d.Equals(&l) {
		t.Errorf("span attributes differ:\ndefault %v\nlate    %v", d.ToSlice(), l.ToSlice())
	}
	if got := attr(attribute.NewSet(late.Attributes()...), "vactor.pipeline.seq"); got != "7" {
		t.Errorf("vactor.pipeline.seq = %q, want 7", got)
	}
	if def.Name() != "GET" || late.Name() != "GET" || late.SpanKind() != trace.SpanKindClient || late.Status().Code != codes.Error {
		t.Errorf("spans: %q %q kind %v status %v", def.Name(), late.Name(), late.SpanKind(), late.Status())
	}
	if !def.StartTime().Equal(late.StartTime()) || !late.EndTime().Equal(ev.Done) {
		t.Errorf("times: default %v-%v, late %v-%v", def.StartTime(), def.EndTime(), late.StartTime(), late.EndTime())
	}
	if got := attr(attribute.NewSet(defSeen...), "db.operation.name"); got != "GET" {
		t.Errorf("by default the sampler saw db.operation.name %q, want GET (all: %v)", got, defSeen)
	}
	if len(lateSeen) != 0 {
		t.Errorf("WithoutSamplerAttributes: the sampler saw %v, want none", lateSeen)
	}
	if lateAllocs > defAllocs-2 {
		t.Errorf("allocations per span: %v by default, %v WithoutSamplerAttributes, want 2 less", defAllocs, lateAllocs)
	}
	t.Logf("allocations per span: %v by default, %v WithoutSamplerAttributes", defAllocs, lateAllocs)

	// A span the sampler drops: none recorded, and with the option its
	// attributes are not even built.
	dropped := func(opts ...otelvactor.Option) (int, float64) {
		mp, _, _, _ := providers(t)
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.NeverSample()))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		h, err := otelvactor.New(append(opts, otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp), otelvactor.WithQueryText())...)
		if err != nil {
			t.Fatal(err)
		}
		h.PostExecution(context.Background(), ev)
		a := testing.AllocsPerRun(200, func() { h.PostExecution(context.Background(), ev) })
		return len(sr.Ended()), a
	}
	nDef, aDef := dropped()
	nLate, aLate := dropped(otelvactor.WithoutSamplerAttributes())
	if nDef != 0 || nLate != 0 {
		t.Errorf("NeverSample: %d and %d spans ended, want none", nDef, nLate)
	}
	if aLate >= aDef {
		t.Errorf("allocations per dropped span: %v by default, %v WithoutSamplerAttributes, want fewer", aDef, aLate)
	}
	t.Logf("allocations per dropped span (WithQueryText): %v by default, %v WithoutSamplerAttributes", aDef, aLate)
}

// The hook's own allocations per recorded span, measured with a tracer
// that allocates nothing (the SDK's span, its attribute copy and snapshot
// are the SDK's): the two timestamps (trace.WithTimestamp boxes them,
// which the API leaves no way around), and by default the attributes'
// start option. The start options and End's were arrays that escaped
// through the Tracer and Span interfaces, two allocations more per span
// (now in a pooled scratch).
func TestSpanPathAllocations(t *testing.T) {
	ev := hooks.Executed{Name: "GET", Node: "127.0.0.1:6379", Duration: time.Millisecond, Done: time.Now(),
		Pipeline: 7, PipelineSize: 3, Err: &engine.ServerError{Prefix: "WRONGTYPE"}}
	for _, c := range []struct {
		name string
		opts []otelvactor.Option
		want float64
	}{
		{"default", nil, 3},
		{"WithoutSamplerAttributes", []otelvactor.Option{otelvactor.WithoutSamplerAttributes()}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			mp, _, _, _ := providers(t)
			tr := &countingTracer{}
			h, err := otelvactor.New(append(c.opts, otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(countingTP{tr: tr}))...)
			if err != nil {
				t.Fatal(err)
			}
			h.PostExecution(context.Background(), ev)
			if a := testing.AllocsPerRun(500, func() { h.PostExecution(context.Background(), ev) }); a > c.want {
				t.Fatalf("%v allocations per recorded span in the hook, want at most %v", a, c.want)
			}
			if tr.started.Load() == 0 || tr.ended.Load() != tr.started.Load() {
				t.Fatalf("spans started %d, ended %d: want as many, at least one", tr.started.Load(), tr.ended.Load())
			}
		})
	}
}

// countingTP serves countingTracer, whose spans record and allocate
// nothing.
type countingTP struct {
	noop.TracerProvider
	tr *countingTracer
}

func (p countingTP) Tracer(string, ...trace.TracerOption) trace.Tracer { return p.tr }

type countingTracer struct {
	noop.Tracer
	started, ended atomic.Int64
	span           countingSpan // returned by pointer: no allocation
}

func (c *countingTracer) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	c.started.Add(1)
	c.span.c = c
	return ctx, &c.span
}

type countingSpan struct {
	noop.Span
	c *countingTracer
}

func (*countingSpan) IsRecording() bool                   { return true }
func (s *countingSpan) End(...trace.SpanEndOption)        { s.c.ended.Add(1) }
func (*countingSpan) SetAttributes(...attribute.KeyValue) {}
