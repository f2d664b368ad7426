package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Slot actors stopping for idleness while commands come (a 1 ms idle
// timeout, replica reads: every GET goes through a slot actor) answer
// every command, and under -race show no data race (qa-AV AV1:
// protoactor's receive timeout, which the slot actors used, writes the
// actor context from its timer's goroutine: asynkron/protoactor-go#1139).
func TestClusterSlotIdleStopsUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	defer engine.SetSlotIdleTimeout(time.Millisecond)()
	c := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true).
		WithReadFrom(config.ReadFromReplica))
	defer func() { _ = eng.Close() }()
	var wg sync.WaitGroup
	var gets, bad atomic.Int64
	var first atomic.Value
	stop := time.Now().Add(2 * time.Second)
	for g := range 16 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				k := fmt.Sprintf("idle:%d:%d", g, rand.IntN(64))
				if _, err := eng.Get(ctx, k).Await(ctx); err != nil && !errors.Is(err, engine.ErrNil) {
					bad.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
				gets.Add(1)
				time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d of %d GETs failed, first: %v", n, gets.Load(), first.Load())
	}
	if gets.Load() == 0 {
		t.Fatal("no GET ran")
	}
}
