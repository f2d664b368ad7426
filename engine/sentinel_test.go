package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// sentinelEngine starts an engine on the sentinel setup s with the default
// configuration (mod adjusts it); it closes at cleanup.
func sentinelEngine(t *testing.T, s *valkeytest.Sentinel, mod ...func(config.Config) config.Config) *engine.Engine {
	t.Helper()
	cfg := config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...)
	for _, m := range mod {
		cfg = m(cfg)
	}
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

func TestSentinelDiscovery(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s)
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Do("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k on the primary %s = %v, %v; want v", p.Addr(), got, err)
	}
	st := eng.Stats()
	if st.Sentinel == nil || st.Sentinel.Primary != p.Addr() {
		t.Fatalf("Stats().Sentinel = %+v, want primary %s", st.Sentinel, p.Addr())
	}
	deadline := time.Now().Add(5 * time.Second)
	for eng.Stats().Sentinel.Subscribed != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("subscribed to %d sentinels, want 3", eng.Stats().Sentinel.Subscribed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = context.Background
}
