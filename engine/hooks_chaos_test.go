package engine_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// hooksChaosLoad runs n goroutines of mixed commands on keys until stop closes.
func hooksChaosLoad(t *testing.T, ctx context.Context, n int, keys []string, stop <-chan struct{}, fire func(ctx context.Context, i int, key string)) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 44))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[r.IntN(len(keys))]
				c, cancel := ctx, context.CancelFunc(func() {})
				switch r.IntN(8) {
				case 0:
					c, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(1500))*time.Microsecond)
				case 1:
					c, cancel = context.WithCancel(ctx)
					go cancel()
				}
				fire(c, i, k)
				cancel()
			}
		}()
	}
	return &wg
}

// Under -race: commands answered, retried after their connection was
// killed, expired, in pipelines and transactions, each get exactly one
// PostExecution, built on the hook goroutine for the pipelined ones.
func TestHooksChaosStandalone(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		return c.WithDB(2).WithHooks(rec).WithMaxRetries(3).WithMinRetryBackoff(time.Millisecond).WithMaxRetryBackoff(5 * time.Millisecond)
	})
	ctx := ctxT(t)
	keys := []string{"rv44:a", "rv44:b", "rv44:c", "rv44:d"}
	stop := make(chan struct{})
	var fired atomic.Int64
	wg := hooksChaosLoad(t, ctx, 8, keys, stop, func(c context.Context, i int, k string) {
		switch i % 5 {
		case 0:
			_ = eng.Set(c, k, "v", 0).Err(ctx)
		case 1:
			_, _ = eng.Get(c, k).Await(ctx)
		case 2:
			_, _ = eng.Incr(c, k+":n").Await(ctx)
		case 3:
			p := eng.Pipeline()
			p.Set(k, "p", 0)
			p.Get(k)
			_ = p.Exec(c)
		case 4:
			tx := eng.Tx()
			tx.Incr(k + ":t")
			tx.Get(k)
			_ = tx.Exec(c)
		}
		fired.Add(1)
	})
	var kills sync.WaitGroup
	kills.Go(func() {
		for range 15 {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			_, _ = srv.Do("CLIENT", "KILL", "TYPE", "normal")
		}
	})
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	kills.Wait()
	if err := eng.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	rec.with(func() {
		if len(rec.fired) != len(rec.executed) {
			t.Errorf("%d PreExecution, %d PostExecution", len(rec.fired), len(rec.executed))
		}
		retried := 0
		for _, ev := range rec.executed {
			if ev.DB != 2 {
				t.Errorf("%s: DB %d", ev.Name, ev.DB)
			}
			if ev.Retries > 0 {
				retried++
			}
		}
		t.Logf("%d calls, %d events, %d retried", fired.Load(), len(rec.executed), retried)
	})
}

// Under -race: the slot of the keys moves back and forth between two
// primaries while commands run on it (MOVED, ASK, TRYAGAIN): each
// command gets exactly one PostExecution.
func TestHooksChaosClusterMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, _, _, eng := hookedCluster(t)
	defer eng.Close()
	ctx := ctxT(t)
	keys := []string{"{rv44}a", "{rv44}b", "{rv44}c"}
	slot, err := c.KeySlot(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wg := hooksChaosLoad(t, ctx, 6, keys, stop, func(cc context.Context, i int, k string) {
		switch i % 4 {
		case 0:
			_ = eng.Set(cc, k, "v", 0).Err(ctx)
		case 1:
			_, _ = eng.Get(cc, k).Await(ctx)
		case 2:
			_, _ = eng.MGet(cc, keys[0], k).Await(ctx)
		case 3:
			p := eng.Pipeline()
			p.Set(k, "p", 0)
			p.Get(k)
			_ = p.Exec(cc)
		}
	})
	for range 4 {
		from, err := c.NodeForSlot(slot)
		if err != nil {
			t.Fatal(err)
		}
		var to *valkeytest.ClusterNode
		for _, p := range c.Primaries() {
			if p != from {
				to = p
				break
			}
		}
		if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := eng.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	rec.with(func() {
		if len(rec.fired) != len(rec.executed) {
			t.Errorf("%d PreExecution, %d PostExecution", len(rec.fired), len(rec.executed))
		}
		redirected := 0
		for _, ev := range rec.executed {
			if ev.Redirects > 0 {
				redirected++
			}
		}
		t.Logf("%d events, %d redirected, %d redirect events", len(rec.executed), redirected, len(rec.redirects))
	})
}
