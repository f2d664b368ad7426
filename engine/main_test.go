package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// newEngine starts a server and an engine on it; both stop at cleanup.
func newEngine(t testing.TB, mod ...func(config.Config) config.Config) (*engine.Engine, *valkeytest.Server) {
	t.Helper()
	srv := valkeytest.Start(t)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	for _, m := range mod {
		cfg = m(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng, srv
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
