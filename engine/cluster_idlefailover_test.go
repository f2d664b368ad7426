package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestClusterFailoverWhileIdle: a primary fails over while the engine
// sends nothing, so its slot map still names the dead node. The first
// command to one of its slots afterwards follows the failover (the node
// refused it unrun: the map is read again) instead of failing, whether the
// engine had dialled the dead node (its connection breaks, its breaker
// opens) or had never dialled it (the dial is refused).
func TestClusterFailoverWhileIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{NodeTimeout: 2 * time.Second})
	keys, owner := keysByOwner(t, c, 600)
	keyOf := func(p *valkeytest.ClusterNode) string {
		for _, k := range keys {
			if owner[k] == p.Addr() {
				return k
			}
		}
		t.Fatalf("no key for %s", p.Addr())
		return ""
	}
	primaries := c.Primaries()
	dialled, fresh := primaries[2], primaries[1]
	eng, err := open(context.Background(), t, config.DefaultConfig().WithAddrs(primaries[0].Addr()).WithClusterMode(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	ctx := ctxT(t)
	if err := eng.Sync().Set(ctx, keyOf(dialled), "v0", 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *valkeytest.ClusterNode
	}{{"dialled", dialled}, {"never dialled", fresh}} {
		k := keyOf(tc.p)
		if err := c.KillPrimary(tc.p); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitFailover(tc.p, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := eng.Sync().Set(ctx, k, "v1", 0); err != nil {
			t.Fatalf("%s: first SET after the failover: %v", tc.name, err)
		}
		v, err := eng.Sync().Get(ctx, k)
		if err != nil || v != "v1" {
			t.Fatalf("%s: GET after the failover: %q, %v", tc.name, v, err)
		}
		t.Logf("%s: first SET after the failover took %s", tc.name, time.Since(start))
	}
}
