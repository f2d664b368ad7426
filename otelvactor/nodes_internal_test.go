package otelvactor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
)

// The hook keeps at most maxNodes node addresses: under node churn (a
// cluster's nodes replaced, each under a new address) it forgets the
// nodes not used since its previous sweep, with their series and span
// options and their Producer points; while it cannot, new nodes are
// server.address _OTHER. Before, it kept every address it ever saw, in
// four maps and the Producer.
func TestNodesBounded(t *testing.T) {
	defer func(n int, every time.Duration) { maxNodes, nodeSweepEvery = n, every }(maxNodes, nodeSweepEvery)
	maxNodes, nodeSweepEvery = 4, time.Hour
	p := NewProducer()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	h, err := New(WithMeterProvider(mp), WithTracerProvider(tp), WithProducer(p))
	if err != nil {
		t.Fatal(err)
	}
	node := func(i int) string { return fmt.Sprintf("10.0.%d.%d:6379", i/250, i%250) }
	post := func(i int) string {
		h.PostExecution(context.Background(), hooks.Executed{Name: "GET", Node: node(i), Duration: time.Millisecond, Done: time.Now()})
		ended := spans.Ended()
		for _, kv := range ended[len(ended)-1].Attributes() {
			if kv.Key == "server.address" {
				return kv.Value.AsString()
			}
		}
		return ""
	}
	for i := range 4 {
		if got := post(i); got != fmt.Sprintf("10.0.0.%d", i) {
			t.Fatalf("node %d: server.address %q", i, got)
		}
	}
	// At the cap, every node used since: the new ones are _OTHER.
	if got := post(4); got != "_OTHER" {
		t.Fatalf("a node past the cap: server.address %q, want _OTHER", got)
	}
	if got := post(5); got != "_OTHER" {
		t.Fatalf("a node past the cap: server.address %q, want _OTHER", got)
	}
	// An hour later (the sweep's period), node 0 used since, nodes 1-3 not:
	// they are forgotten and node 6 gets its own series.
	post(0)
	h.mu.Lock()
	h.swept = time.Now().Add(-2 * time.Hour)
	h.mu.Unlock()
	if got := post(6); got != "10.0.0.6" {
		t.Fatalf("a new node after a sweep could forget others: server.address %q", got)
	}
	check := func(want ...string) {
		t.Helper()
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.nodes) > maxNodes || len(h.ops) > maxNodes+1 || len(h.spans) > maxNodes+1 {
			t.Fatalf("%d nodes, %d series, %d span options kept; want at most %d, %d, %d", len(h.nodes), len(h.ops), len(h.spans), maxNodes, maxNodes+1, maxNodes+1)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.points) != len(p.order) || len(p.points) > maxNodes+1 {
			t.Fatalf("%d producer points (%d in order), want at most %d", len(p.points), len(p.order), maxNodes+1)
		}
		if want == nil {
			return
		}
		got := map[string]bool{}
		for _, pt := range p.order {
			a, _ := pt.attrs.Value("server.address")
			got[a.AsString()] = true
		}
		if len(got) != len(want) {
			t.Fatalf("producer series of %v, want %v", got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Fatalf("producer series of %v, want %v", got, want)
			}
		}
	}
	check("10.0.0.0", "_OTHER", "10.0.0.6")
	// Churn: thousands of addresses, each used once.
	nodeSweepEvery = 0
	for i := 7; i < 3000; i++ {
		post(i)
	}
	check()
	// The breaker states of nodes past the cap make one observation.
	nodeSweepEvery = time.Hour
	h.mu.Lock()
	h.swept = time.Now()
	h.mu.Unlock()
	var nodes []engine.NodeStats
	for i := 5000; i < 5006; i++ {
		nodes = append(nodes, engine.NodeStats{Addr: node(i), Breaker: []string{hooks.BreakerClosed, hooks.BreakerOpen, hooks.BreakerHalfOpen}[i%3]})
	}
	r := h.observe("eng", func() engine.Stats { return engine.Stats{Nodes: nodes} })
	defer r.Unregister()
	states := points(t, reader, "vactor.breaker.state")
	other := attribute.NewSet(attribute.String("server.address", "_OTHER"))
	if v, ok := states[other.Encoded(attribute.DefaultEncoder())]; !ok || v != 2 {
		t.Fatalf("breaker states %v, want _OTHER open (the worst)", states)
	}
}
