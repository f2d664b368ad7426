package enginetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// ClusterResharding: 2,000 slots migrate from one primary to another
// while 32 goroutines INCR their keys. No error reaches a caller, every
// INCR returns the next value (order kept across MOVED and ASK), and the
// counters read back match.
func ClusterResharding(t *testing.T, o Options) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := o.newEngine(t, o.Config(c.Addrs()[0]).WithClusterMode(true))
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	counts := make([][]int64, 32)
	const keysPer = 20
	for g := range 32 {
		counts[g] = make([]int64, keysPer)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; !stop.Load(); i++ {
				k := i % keysPer
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				v, err := eng.Incr(cctx, fmt.Sprintf("g%d:k%d", g, k)).Await(cctx)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("g%d k%d: %w", g, k, err)
					return
				}
				counts[g][k]++
				if v != counts[g][k] {
					errs <- fmt.Errorf("g%d k%d: INCR returned %d, want %d (order broken)", g, k, v, counts[g][k])
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // traffic before the migration
	p := c.Primaries()
	var moved []int
	for s := 0; s < 16384 && len(moved) < 2000; s++ {
		if n, _ := c.NodeForSlot(s); n != nil && n.Addr() == p[0].Addr() {
			moved = append(moved, s)
		}
	}
	start := time.Now()
	if err := c.MigrateSlots(p[0], p[1], moved); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond) // traffic after the migration
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	total := int64(0)
	for g := range 32 {
		for k := range keysPer {
			want := counts[g][k]
			total += want
			if want == 0 {
				continue
			}
			v, err := eng.Get(ctx, fmt.Sprintf("g%d:k%d", g, k)).Await(ctx)
			if err != nil || v != fmt.Sprint(want) {
				t.Fatalf("g%d:k%d = %q, %v; want %d", g, k, v, err, want)
			}
		}
	}
	st := eng.Stats()
	t.Logf("migrated %d slots in %s under load; %d INCRs acknowledged, 0 errors; %d redirects followed, %d slot actors",
		len(moved), took, total, st.Redirects, st.SlotActors)
	if st.Redirects == 0 {
		t.Fatal("no redirect was followed: the migration did not meet the traffic")
	}
}
