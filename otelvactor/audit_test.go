package otelvactor_test

// A user's audit of the hook: what an operator relies on besides the
// scripted run: metric attributes free of keys and values, bounded
// error.type values, one series per command whatever the case it was given
// in, the consumer lag of a group read from several streams, the
// PreExecution context as the span parent, the global providers, and
// error replies told apart from transport errors.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/otelvactor"
	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// pointAttrs returns the attribute sets of every point of every metric.
func pointAttrs(ms map[string]metricdata.Metrics) map[string][]attribute.Set {
	out := map[string][]attribute.Set{}
	for name, m := range ms {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Histogram[int64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		}
	}
	return out
}

// An error reply that does not begin with an error code (a script's
// error_reply, a module's error) gets error.type _OTHER and no
// db.response.status_code, in the metric and in the span: its first word
// may be a key or a value ("user:4711 not found"), which would make a
// series per value. Error codes (WRONGTYPE, a script's own "MYAPP_ERR")
// are kept. Every metric attribute of the run is free of the keys and
// values it used.
func TestErrorReplyCodesBounded(t *testing.T) {
	mp, reader, tp, sr := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp), otelvactor.WithQueryText())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eng := hookedEngine(t, ctx, h)
	defer eng.Close()
	const script = "return redis.error_reply(ARGV[1])"
	secrets := []string{"user:4711", "secret-value-0815", "audit:key"}
	if err := eng.Set(ctx, "audit:key", "secret-value-0815", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	var se *engine.ServerError
	if _, err := eng.Do(ctx, "EVAL", script, "0", "user:4711 not found").Await(ctx); !errors.As(err, &se) || se.Prefix != "user:4711" {
		t.Fatalf("EVAL of an error_reply: %v, want a *ServerError with prefix user:4711", err)
	}
	if _, err := eng.Do(ctx, "EVAL", script, "0", "MYAPP_ERR no such order").Await(ctx); !errors.As(err, &se) || se.Prefix != "MYAPP_ERR" {
		t.Fatalf("EVAL of an error_reply: %v, want a *ServerError with prefix MYAPP_ERR", err)
	}
	if err := eng.LPush(ctx, "audit:key", "x").Err(ctx); !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("LPUSH on a string: %v", err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	ms := collect(t, reader)
	got := map[string]string{} // error.type -> db.response.status_code
	for _, p := range durations(t, ms) {
		if typ := attr(p.Attributes, "error.type"); typ != "" {
			got[typ] = attr(p.Attributes, "db.response.status_code")
		}
	}
	want := map[string]string{"_OTHER": "", "MYAPP_ERR": "MYAPP_ERR", "WRONGTYPE": "WRONGTYPE"}
	if len(got) != len(want) {
		t.Errorf("error.type -> db.response.status_code: %v, want %v", got, want)
	}
	for typ, code := range want {
		if g, ok := got[typ]; !ok || g != code {
			t.Errorf("error.type %q: status code %q (present %t), want %q", typ, g, ok, code)
		}
	}
	for name, sets := range pointAttrs(ms) {
		for _, s := range sets {
			for _, kv := range s.ToSlice() {
				for _, x := range secrets {
					if strings.Contains(kv.Value.String(), x) {
						t.Errorf("metric %s attribute %s=%q holds %q", name, kv.Key, kv.Value.String(), x)
					}
				}
			}
		}
	}
	for _, s := range sr.Ended() {
		for _, kv := range s.Attributes() {
			for _, x := range secrets {
				if strings.Contains(kv.Value.String(), x) {
					t.Errorf("span %s attribute %s=%q holds %q", s.Name(), kv.Key, kv.Value.String(), x)
				}
			}
		}
		if s.Name() == "EVAL" && (s.Status().Code != codes.Error || strings.Contains(s.Status().Description, "4711")) {
			t.Errorf("EVAL span status %+v", s.Status())
		}
	}
}

// A command given to Do in lower case is one series and one span name with
// the same command in upper case: "get" and GET are one operation.
func TestOperationNameCase(t *testing.T) {
	mp, reader, tp, sr := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eng := hookedEngine(t, ctx, h)
	defer eng.Close()
	if _, err := eng.Get(ctx, "case").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatal(err)
	}
	if _, err := eng.Do(ctx, "get", "case").Await(ctx); err != nil { // Do's nil reply is a Reply
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	var names []string
	var count uint64
	for _, p := range durations(t, collect(t, reader)) {
		names = append(names, attr(p.Attributes, "db.operation.name"))
		count += p.Count
	}
	if len(names) != 1 || names[0] != "GET" || count != 2 {
		t.Errorf("db.operation.name series %v (%d commands), want one, GET, of 2", names, count)
	}
	for _, s := range sr.Ended() {
		if s.Name() != "GET" || attr(attribute.NewSet(s.Attributes()...), "db.operation.name") != "GET" {
			t.Errorf("span %q, db.operation.name %q; want GET", s.Name(), attr(attribute.NewSet(s.Attributes()...), "db.operation.name"))
		}
	}
}

// Two streams read by groups of the same name: vactor.stream.consumer.lag
// and .pending report one point for the group (the stream's name, a key,
// is no attribute) with the sum of the streams' latest values, not one of
// them picked at random.
func TestConsumerLagSumsStreamsOfAGroup(t *testing.T) {
	h, reader := metricsHook(t)
	h.OnConsumerEvent(hooks.Consumer{Kind: hooks.Lag, Stream: "orders", Group: "workers", Consumer: "c1", Lag: 5, Pending: 2})
	h.OnConsumerEvent(hooks.Consumer{Kind: hooks.Lag, Stream: "payments", Group: "workers", Consumer: "c2", Lag: 7, Pending: 3})
	h.OnConsumerEvent(hooks.Consumer{Kind: hooks.Lag, Stream: "audit", Group: "auditors", Consumer: "c3", Lag: -1, Pending: 4})
	h.OnConsumerEvent(hooks.Consumer{Kind: hooks.Lag, Stream: "orders", Group: "workers", Consumer: "c1", Lag: 6, Pending: 1}) // replaces the first
	ms := collect(t, reader)
	for _, c := range []struct {
		metric, group string
		want          int64
		points        int
	}{
		{"vactor.stream.consumer.lag", "workers", 13, 1},
		{"vactor.stream.consumer.pending", "workers", 4, 1},
		{"vactor.stream.consumer.lag", "auditors", 0, 0}, // unknown: not reported
		{"vactor.stream.consumer.pending", "auditors", 4, 1},
	} {
		g, ok := ms[c.metric].Data.(metricdata.Gauge[int64])
		if !ok {
			t.Fatalf("%s: %T", c.metric, ms[c.metric].Data)
		}
		var points int
		var v int64
		for _, p := range g.DataPoints {
			if attr(p.Attributes, "vactor.stream.group") == c.group {
				points++
				v = p.Value
				if p.Attributes.Len() != 1 {
					t.Errorf("%s attributes %v, want the group only", c.metric, p.Attributes.ToSlice())
				}
			}
		}
		if points != c.points || v != c.want {
			t.Errorf("%s of group %s: %d points, value %d; want %d, %d", c.metric, c.group, points, v, c.points, c.want)
		}
	}
}

// spanHook starts a span of its own in PreExecution, as an application's
// tracing middleware might.
type spanHook struct{ tr trace.Tracer }

func (h spanHook) PreExecution(ctx context.Context, cmd hooks.Command) context.Context {
	ctx, span := h.tr.Start(ctx, "app:"+cmd.Name)
	span.End()
	return ctx
}

// The context a PreExecution hook returns is the one the command's span is
// a child of, whether that hook comes before or after the OTel hook in the
// slice (PostExecution gets the context of all the PreExecution hooks).
func TestSpanParentFromPreExecution(t *testing.T) {
	for _, first := range []bool{true, false} {
		mp, _, tp, sr := providers(t)
		h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp))
		if err != nil {
			t.Fatal(err)
		}
		app := spanHook{tp.Tracer("app")}
		hs := []hooks.Hook{h, app}
		if first {
			hs = []hooks.Hook{app, h}
		}
		srv := valkeytest.Start(t)
		ctx := ctxT(t)
		eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(hs...))
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Set(ctx, "parent", "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
		var appSpan, set trace.SpanContext
		var parent trace.SpanContext
		for _, s := range sr.Ended() {
			switch s.Name() {
			case "app:SET":
				appSpan = s.SpanContext()
			case "SET":
				set, parent = s.SpanContext(), s.Parent()
			}
		}
		if !appSpan.IsValid() || !set.IsValid() || parent.SpanID() != appSpan.SpanID() || set.TraceID() != appSpan.TraceID() {
			t.Errorf("app hook first %t: SET span %v with parent %v, want the app's span %v", first, set.SpanID(), parent.SpanID(), appSpan.SpanID())
		}
	}
}

// Without providers, the hook records through the global ones.
func TestGlobalProviders(t *testing.T) {
	mp, reader, tp, sr := providers(t)
	oldMP, oldTP := otel.GetMeterProvider(), otel.GetTracerProvider()
	otel.SetMeterProvider(mp)
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetMeterProvider(oldMP)
		otel.SetTracerProvider(oldTP)
	})
	h, err := otelvactor.New()
	if err != nil {
		t.Fatal(err)
	}
	h.PostExecution(context.Background(), hooks.Executed{Name: "GET", Node: "127.0.0.1:6379", Duration: time.Millisecond, Done: time.Now()})
	if ps := durations(t, collect(t, reader)); len(ps) != 1 || ps[0].Count != 1 {
		t.Errorf("global meter provider: %d points", len(ps))
	}
	if n := len(sr.Ended()); n != 1 {
		t.Errorf("global tracer provider: %d spans, want 1", n)
	}
}

// An error reply fails the span with its code as error.type and
// db.response.status_code; a transport error with _OTHER and no status
// code; the engine's errors with their names; a nil reply is no error.
func TestErrorKinds(t *testing.T) {
	mp, reader, tp, sr := providers(t)
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		err         error
		typ, status string
		failed      bool
	}{
		{"GET", engine.ErrNil, "", "", false},
		{"LPUSH", &engine.ServerError{Prefix: "WRONGTYPE", Message: "WRONGTYPE Operation against a key holding the wrong kind of value"}, "WRONGTYPE", "WRONGTYPE", true},
		{"SET", io.ErrUnexpectedEOF, "_OTHER", "", true},
		{"INCR", engine.ErrCircuitOpen, "circuit_open", "", true},
		{"DEL", context.DeadlineExceeded, "timeout", "", true},
		// The engine's other errors have names of their own, not the
		// transport errors' _OTHER (before, these were _OTHER: a
		// dashboard counted a Watch's normal contention as transport
		// failures).
		{"HSET", engine.ErrTxAborted, "tx_aborted", "", true},
		{"LPOP", engine.ErrDiscarded, "discarded", "", true},
		{"RPOP", fmt.Errorf("%w: all 256 lent", engine.ErrPoolExhausted), "pool_exhausted", "", true},
		{"SADD", fmt.Errorf("%w: slot 42", engine.ErrNoSlotOwner), "no_slot_owner", "", true},
		{"SREM", engine.ErrNodeRemoved, "node_removed", "", true},
		{"ZADD", fmt.Errorf("%w: b is a replica", engine.ErrNotPrimary), "not_primary", "", true},
		{"ZREM", engine.ErrConnectionState, "invalid_argument", "", true},
		{"BLPOP", fmt.Errorf("%w: %w", engine.ErrPrimaryChanged, io.EOF), "primary_changed", "", true},
		// A command its ctx cut after it was sent may have run: the
		// outcome unknown first (qa-AR AR1: labelled timeout).
		{"BRPOP", &policies.OutcomeUnknownError{Cause: context.DeadlineExceeded}, "outcome_unknown", "", true},
		{"DECR", &policies.OutcomeUnknownError{Cause: context.Canceled}, "outcome_unknown", "", true},
	}
	for _, c := range cases {
		h.PostExecution(context.Background(), hooks.Executed{Name: c.name, Node: "127.0.0.1:6379", Err: c.err, Duration: time.Millisecond, Done: time.Now()})
	}
	spans := sr.Ended()
	if len(spans) != len(cases) {
		t.Fatalf("%d spans, want %d", len(spans), len(cases))
	}
	points := durations(t, collect(t, reader))
	for i, c := range cases {
		s := spans[i]
		as := attribute.NewSet(s.Attributes()...)
		if (s.Status().Code == codes.Error) != c.failed || attr(as, "error.type") != c.typ || attr(as, "db.response.status_code") != c.status {
			t.Errorf("%s (%v): span status %v, error.type %q, status code %q; want failed %t, %q, %q",
				c.name, c.err, s.Status(), attr(as, "error.type"), attr(as, "db.response.status_code"), c.failed, c.typ, c.status)
		}
		found := false
		for _, p := range points {
			if attr(p.Attributes, "db.operation.name") == c.name {
				found = attr(p.Attributes, "error.type") == c.typ && attr(p.Attributes, "db.response.status_code") == c.status
			}
		}
		if !found {
			t.Errorf("%s: no duration point with error.type %q, status code %q", c.name, c.typ, c.status)
		}
	}
}

// Error reply codes are bounded: after the first 64 distinct ones, a new
// code is error.type _OTHER without db.response.status_code, so that a
// script whose error_reply begins with a value shaped like a code
// ("ORDER-4711 missing") does not make a series per value. Codes seen
// before stay as they are.
func TestErrorReplyCodesCapped(t *testing.T) {
	h, reader := metricsHook(t)
	post := func(code string) {
		h.PostExecution(context.Background(), hooks.Executed{Name: "EVAL", Node: "127.0.0.1:6379", Duration: time.Millisecond, Done: time.Now(),
			Err: &engine.ServerError{Prefix: code, Message: code + " missing"}})
	}
	post("WRONGTYPE")
	for i := range 200 {
		post("ORDER-" + strconv.Itoa(i))
	}
	post("WRONGTYPE")
	codes := map[string]uint64{}
	for _, p := range durations(t, collect(t, reader)) {
		typ, status := attr(p.Attributes, "error.type"), attr(p.Attributes, "db.response.status_code")
		if typ != "_OTHER" && typ != status {
			t.Errorf("error.type %q with status code %q", typ, status)
		}
		codes[typ] += p.Count
	}
	if len(codes) != 65 {
		t.Errorf("%d error.type values, want 64 codes and _OTHER", len(codes))
	}
	if codes["WRONGTYPE"] != 2 || codes["_OTHER"] != 200-63 {
		t.Errorf("WRONGTYPE %d commands, _OTHER %d; want 2 and %d", codes["WRONGTYPE"], codes["_OTHER"], 200-63)
	}
}

// A hook takes at most maxOperationNames distinct db.operation.name
// values; commands of names first seen after those are counted as
// _OTHER, in one series, and the names taken before still get theirs.
func TestOperationNamesCapped(t *testing.T) {
	h, reader := metricsHook(t)
	post := func(name string) {
		h.PostExecution(context.Background(), hooks.Executed{Name: name, Node: "127.0.0.1:6379", Duration: time.Millisecond, Done: time.Now()})
	}
	post("GET")
	for i := range 1100 {
		post("MADE-UP-" + strconv.Itoa(i))
	}
	post("GET")
	names := map[string]uint64{}
	for _, p := range durations(t, collect(t, reader)) {
		names[attr(p.Attributes, "db.operation.name")] += p.Count
	}
	if len(names) != 1025 {
		t.Errorf("%d db.operation.name values, want 1,024 names and _OTHER", len(names))
	}
	if names["GET"] != 2 || names["_OTHER"] != 1100-1023 {
		t.Errorf("GET %d commands, _OTHER %d; want 2 and %d", names["GET"], names["_OTHER"], 1100-1023)
	}
}

// A pipeline a transport error ended records its round trip too, under
// error.type: vactor.pipeline.duration had no point for it, so a node
// failing every round trip looked idle.
func TestPipelineDurationOnTransportError(t *testing.T) {
	h, reader := metricsHook(t)
	h.OnPipelineAnswered(hooks.Pipeline{Node: "127.0.0.1:1", Seq: 1, Size: 3, RTT: 2 * time.Millisecond})
	h.OnPipelineAnswered(hooks.Pipeline{Node: "127.0.0.1:1", Seq: 2, Size: 5, RTT: 3 * time.Second,
		Err: fmt.Errorf("read: %w", context.DeadlineExceeded)})
	// Never written: no round trip to record.
	h.OnPipelineAnswered(hooks.Pipeline{Node: "127.0.0.1:1", Seq: 3, Size: 5, RTT: time.Microsecond,
		Err: fmt.Errorf("%w: the connection was closed while idle", drivers.ErrNotSent)})
	m, ok := collect(t, reader)["vactor.pipeline.duration"].Data.(metricdata.Histogram[float64])
	if !ok || len(m.DataPoints) != 2 {
		t.Fatalf("vactor.pipeline.duration: %+v, want two points (answered, failed)", m)
	}
	var failed, answered int
	for _, p := range m.DataPoints {
		typ, has := p.Attributes.Value("error.type")
		switch {
		case !has && p.Count == 1 && p.Sum == 0.002:
			answered++
		case has && typ.AsString() == "timeout" && p.Count == 1 && p.Sum == 3:
			failed++
		default:
			t.Errorf("point %v count %d sum %v", p.Attributes.ToSlice(), p.Count, p.Sum)
		}
		if addr, _ := p.Attributes.Value("server.address"); addr.AsString() != "127.0.0.1" {
			t.Errorf("point %v: server.address %q", p.Attributes.ToSlice(), addr.AsString())
		}
	}
	if failed != 1 || answered != 1 {
		t.Fatalf("answered %d, failed %d: %+v", answered, failed, m.DataPoints)
	}
}
