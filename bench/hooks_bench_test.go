package bench

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/otelvactor"
)

// The cost of the OpenTelemetry hook: the engine without hooks, with the
// metrics only (db.client.operation.duration aggregated by an
// otelvactor.Producer, the recommended setup; and recorded per command
// through the SDK's histogram: -sdk), and with those metrics (Producer)
// and a span per command (100% sampling, batched to an exporter that
// drops them; -late: WithoutSamplerAttributes), same server, interleaved
// at each level.
var hookLevels = []int{16, 256, 2048}

var hookContenders = []contender{
	{"engine", func(tb testing.TB) client {
		return newEngineClient(tb, config.DefaultConfig().WithAddrs(addr))
	}},
	{"engine-otel-metrics", func(tb testing.TB) client { return metricsClient(tb, "engine-otel-metrics", true) }},
	{"engine-otel-metrics-sdk", func(tb testing.TB) client { return metricsClient(tb, "engine-otel-metrics-sdk", false) }},
	{"engine-otel-trace", func(tb testing.TB) client {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		c := metricsClient(tb, "engine-otel-trace", true, otelvactor.WithTracerProvider(tp))
		close := c.close
		c.close = func() { close(); _ = tp.Shutdown(context.Background()) }
		return c
	}},
	// engine-otel-trace with the attributes set after each span's start
	// (otelvactor.WithoutSamplerAttributes: for samplers that do not read
	// them, as AlwaysSample here).
	{"engine-otel-trace-late", func(tb testing.TB) client {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		c := metricsClient(tb, "engine-otel-trace-late", true, otelvactor.WithTracerProvider(tp), otelvactor.WithoutSamplerAttributes())
		close := c.close
		c.close = func() { close(); _ = tp.Shutdown(context.Background()) }
		return c
	}},
}

// metricsClient is the engine with the otelvactor metrics hook:
// db.client.operation.duration through a Producer, or through the SDK's
// histogram; no tracing unless opts give a TracerProvider.
func metricsClient(tb testing.TB, name string, producer bool, opts ...otelvactor.Option) client {
	if len(opts) == 0 {
		opts = append(opts, otelvactor.WithoutTracing())
	}
	var readerOpts []sdkmetric.ManualReaderOption
	if producer {
		p := otelvactor.NewProducer()
		opts = append(opts, otelvactor.WithProducer(p))
		readerOpts = append(readerOpts, sdkmetric.WithProducer(p))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(readerOpts...)))
	h, err := otelvactor.New(append(opts, otelvactor.WithMeterProvider(mp))...)
	if err != nil {
		tb.Fatal(err)
	}
	c := newEngineClient(tb, config.DefaultConfig().WithAddrs(addr).WithHooks(h))
	c.name = name
	return c
}

func BenchmarkHooksGet(b *testing.B) {
	bench(b, hookLevels, hookContenders, func(c client) op { return c.get })
}

func BenchmarkHooksSet(b *testing.B) {
	bench(b, hookLevels, hookContenders, func(c client) op { return c.set })
}
