package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/valkeytest"
)

// The slot map read from a real 3+3 cluster matches the cluster's own view
// of every slot, before and after slots move.
func TestFetchTopologyFromCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := c.Addrs()[0]
	nconn, err := valkeygo.Driver{}.Dial(ctx, drivers.Options{Addr: addr, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer nconn.Close()
	conn, err := drivers.Fast(nconn)
	if err != nil {
		t.Fatal(err)
	}

	check := func(stage string) {
		t.Helper()
		topo, err := actors.FetchTopology(ctx, conn, addr, false)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if len(topo.Shards) != 3 {
			t.Fatalf("%s: %d shards, want 3: %+v", stage, len(topo.Shards), topo.Shards)
		}
		if n := topo.Covered(); n != actors.Slots {
			t.Fatalf("%s: %d slots covered, want all", stage, n)
		}
		for _, s := range topo.Shards {
			// A replica whose replication offset is still 0 reports health
			// "loading" and is left out (it cannot serve reads yet).
			if len(s.Replicas) > 1 {
				t.Fatalf("%s: shard %s has replicas %v, want at most 1", stage, s.Primary, s.Replicas)
			}
		}
		for slot := 0; slot < actors.Slots; slot += 97 {
			want, err := c.NodeForSlot(slot)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := topo.Owner(uint16(slot))
			if !ok || got.Primary != want.Addr() {
				t.Fatalf("%s: slot %d owned by %v, cluster says %s", stage, slot, got, want.Addr())
			}
		}
	}
	check("formed")

	p := c.Primaries()
	slots := make([]int, 0, 200)
	for s := range 200 {
		slots = append(slots, s*7) // scattered, whoever owns them
	}
	var fromFirst []int
	for _, s := range slots {
		if n, _ := c.NodeForSlot(s); n.Addr() == p[0].Addr() {
			fromFirst = append(fromFirst, s)
		}
	}
	if len(fromFirst) == 0 {
		t.Fatal("no sampled slot on the first primary")
	}
	if err := c.MigrateSlots(p[0], p[1], fromFirst); err != nil {
		t.Fatal(err)
	}
	check("after migrating slots")
}
