package bench

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// The cluster benchmarks start one 3+3 cluster on first use
// ($VALKEY_CLUSTER_ADDRS, comma separated, to use yours).
var (
	clusterOnce  sync.Once
	clusterAddrs []string
	clusterErr   error
	clusterStop  func()
)

func clusterSeeds(tb testing.TB) []string {
	clusterOnce.Do(func() {
		if a := os.Getenv("VALKEY_CLUSTER_ADDRS"); a != "" {
			clusterAddrs = strings.Split(a, ",")
			return
		}
		c, err := valkeytest.StartCluster(valkeytest.ClusterOptions{})
		if err != nil {
			clusterErr = err
			return
		}
		clusterAddrs, clusterStop = c.Addrs(), func() { _ = c.Stop() }
	})
	if clusterErr != nil {
		tb.Fatal(clusterErr)
	}
	return clusterAddrs
}

var clusterContenders = contendersFor(clusterSeeds, true)

var clusterLevels = []int{256, 2048}

func BenchmarkClusterGet(b *testing.B) {
	bench(b, clusterLevels, clusterContenders, func(c client) op { return c.get })
}

func BenchmarkClusterSet(b *testing.B) {
	bench(b, clusterLevels, clusterContenders, func(c client) op { return c.set })
}

// BenchmarkClusterSlotActorsRSS reports the resident memory the engine adds
// for 16,384 slots in use: "direct" sends one SET to a key of every slot
// (each slot gets its routing state; commands go straight to the
// connection actors), "actors" one GET per slot with ReadFrom replica, which
// routes reads through the slot actors, so all 16,384 are live.
func BenchmarkClusterSlotActorsRSS(b *testing.B) {
	for _, mode := range []string{"direct", "actors"} {
		b.Run(mode, func(b *testing.B) {
			cfg := config.DefaultConfig().WithAddrs(clusterSeeds(b)...).WithClusterMode(true)
			if mode == "actors" {
				cfg = cfg.WithReadFrom(config.ReadFromReplica)
			}
			for range b.N {
				slotsRSS(b, cfg, mode == "actors")
			}
		})
	}
}

func slotsRSS(b *testing.B, cfg config.Config, read bool) {
	ctx := context.Background()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	before := rssKB(b)
	seen := map[int]bool{}
	for i := 0; len(seen) < 16384; i++ {
		k := "s" + strconv.Itoa(i)
		slot := valkeytest.HashSlot(k)
		if seen[slot] {
			continue
		}
		seen[slot] = true
		if read {
			err = eng.Get(ctx, k).Err(ctx)
			if errors.Is(err, engine.ErrNil) {
				err = nil
			}
		} else {
			err = eng.Set(ctx, k, "v", 0).Err(ctx)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	st := eng.Stats()
	after := rssKB(b)
	b.ReportMetric(float64(st.SlotActors), "slot-actors")
	b.ReportMetric(float64(after-before)/1024, "MB-RSS-added")
	b.ReportMetric(float64(after-before)*1024/16384, "B/slot")
}

func rssKB(tb testing.TB) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}
