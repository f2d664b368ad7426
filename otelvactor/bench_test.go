package otelvactor_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/otelvactor"
)

// The hook's own cost per command (PostExecution on the hook goroutine),
// without the engine: through the SDK's histogram, through a Producer,
// and with a span (100% sampling, batched to an exporter that drops
// them).
func BenchmarkPostExecution(b *testing.B) {
	ev := hooks.Executed{Name: "GET", Node: "127.0.0.1:6379", Duration: 300 * time.Microsecond, Done: time.Now(), Pipeline: 7, PipelineSize: 100}
	run := func(b *testing.B, opts ...otelvactor.Option) {
		h, err := otelvactor.New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			h.PostExecution(ctx, ev)
		}
	}
	b.Run("metrics-sdk", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		run(b, otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing())
	})
	b.Run("metrics-producer", func(b *testing.B) {
		p := otelvactor.NewProducer()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(sdkmetric.WithProducer(p))))
		run(b, otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing(), otelvactor.WithProducer(p))
	})
	b.Run("trace", func(b *testing.B) {
		p := otelvactor.NewProducer()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(sdkmetric.WithProducer(p))))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		run(b, otelvactor.WithMeterProvider(mp), otelvactor.WithTracerProvider(tp), otelvactor.WithProducer(p))
	})
}
