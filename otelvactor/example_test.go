package otelvactor_test

import (
	"context"
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/otelvactor"
)

func Example() {
	ctx := context.Background()
	mp := sdkmetric.NewMeterProvider() // add a reader: Prometheus, OTLP, ...
	h, err := otelvactor.New(otelvactor.WithMeterProvider(mp), otelvactor.WithoutTracing())
	if err != nil {
		log.Fatal(err)
	}
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs("127.0.0.1:6379").WithHooks(h))
	if err != nil {
		log.Print(err) // no server in this example
		return
	}
	defer eng.Close()
	reg, err := h.Observe(eng) // connection, mailbox and breaker gauges
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
}
