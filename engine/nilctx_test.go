package engine_test

import (
	"context"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// A nil ctx is taken as context.Background() by every entry point that
// takes one (engine/doc.go): it neither panics nor fails.
func TestNilContext(t *testing.T) {
	eng, srv := newEngine(t)
	var ctx context.Context // nil
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s with a nil ctx: %v", what, err)
		}
	}
	e2, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()))
	check("New", err)
	if e2 != nil {
		check("Close", e2.Close())
	}
	check("Set", eng.Set(ctx, "nilctx:k", "v", 0).Err(ctx))
	if v, err := eng.Get(ctx, "nilctx:k").Await(ctx); err != nil || v != "v" {
		t.Errorf("Get with a nil ctx: %q, %v; want \"v\"", v, err)
	}
	check("Ping", eng.Ping(ctx))
	p := eng.Pipeline()
	f := p.Get("nilctx:k")
	check("Pipeline.Exec", p.Exec(ctx))
	if v, err := f.Await(ctx); err != nil || v != "v" {
		t.Errorf("Pipeline Get with a nil ctx: %q, %v; want \"v\"", v, err)
	}
	tx := eng.Tx()
	tx.Set("nilctx:k", "w", 0)
	check("Tx.Exec", tx.Exec(ctx))
	check("Watch", eng.Watch(ctx, func(tx *engine.Tx) error { tx.Set("nilctx:k", "x", 0); return nil }, "nilctx:k"))
	check("Dedicated", eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { return nil }))
	sub, err := eng.Subscribe(ctx, "nilctx:ch")
	check("Subscribe", err)
	if sub != nil {
		check("Subscription.Close", sub.Close())
	}
	for _, err := range eng.Scan(ctx, "nilctx:*", 10) {
		check("Scan", err)
	}
	bw, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	check("NewBatchWriter", err)
	if bw != nil {
		check("BatchWriter.Set", bw.Set(ctx, "nilctx:b", "v", 0))
		check("BatchWriter.Close", bw.Close(ctx))
	}
}
