package glide_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestClosedEngineSaysClosed: calls on a closed engine fail with
// engine.ErrClosed, as over valkey-go, though glide lacks pub/sub (qa-AZ:
// Subscribe after Close said "does not support PubSub": the capability
// was checked before the closed engine).
func TestClosedEngineSaysClosed(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := eng.Subscribe(ctx, "ch"); !errors.Is(err, drivers.ErrUnsupported) {
		t.Fatalf("Subscribe on the running engine: %v, want ErrUnsupported", err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Subscribe":  func() error { _, err := eng.Subscribe(ctx, "ch"); return err },
		"PSubscribe": func() error { _, err := eng.PSubscribe(ctx, "ch*"); return err },
		"BLPOP":      func() error { _, err := eng.Do(ctx, "BLPOP", "l", "1").Await(ctx); return err },
		"Dedicated": func() error {
			return eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return nil })
		},
		"Consume": func() error {
			_, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
			return err
		},
	} {
		if err := call(); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
