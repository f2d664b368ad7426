package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// pendingFutures counts the futures of fs not complete yet, without
// waiting for any.
func pendingFutures[T any](fs []*futures.Future[T]) int {
	n := 0
	for _, f := range fs {
		if !f.IsDone() {
			n++
		}
	}
	return n
}

// keysInTopSlotsOf returns n keys, each in a different slot of the slot
// ranges given, the highest slots first (Close fails the slots' commands
// in slot order: the last ones are the likeliest to be late).
func keysInTopSlotsOf(ranges [][2]int, n int) []string {
	bySlot := map[int]string{}
	for i := range 200_000 {
		k := fmt.Sprintf("cp:%d", i)
		if s := valkeytest.HashSlot(k); bySlot[s] == "" {
			bySlot[s] = k
		}
	}
	var keys []string
	for s := 16383; s >= 0 && len(keys) < n; s-- {
		for _, r := range ranges {
			if s >= r[0] && s <= r[1] && bySlot[s] != "" {
				keys = append(keys, bySlot[s])
				break
			}
		}
	}
	return keys
}

// Close with DrainTimeout 0 returns with every future complete in cluster
// mode, the commands held by slot actors included. Slots half-way through
// a migration answer a cross-slot-key MGET with TRYAGAIN: with a retry
// backoff far longer than the test, each slot's actor holds the MGET and
// parks every later command of its slot. Many goroutines fire commands at
// those slots and at others (straight to the connection actors), then
// Close runs; right when it returns, without waiting, no future may be
// pending: DrainTimeout bounds how long in-flight commands may still
// succeed, not whether the futures complete.
func TestClusterCloseZeroDrainCompletesHeld(t *testing.T) {
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	for round := range 4 {
		cfg := config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
			WithDrainTimeout(0).WithMinRetryBackoff(time.Minute).WithMaxRetryBackoff(time.Minute)
		eng := engineOn(t, cfg)
		// The highest slots: Close closes the slots in order, these last.
		const slots = 8
		var tags []string
		for s := 16383; len(tags) < slots; s-- {
			tags = append(tags, tagOfSlot(s))
		}
		var held []*futures.Future[[]*string]
		for i, tag := range tags {
			a := fmt.Sprintf("{%s}a%d", tag, round)
			if err := eng.Set(ctx, a, "1", 0).Err(ctx); err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				halfMigrate(t, c, a)
			}
			held = append(held, eng.MGet(ctx, a, fmt.Sprintf("{%s}b%d", tag, round)))
			// The TRYAGAIN came back: the slot actor holds the MGET.
			for deadline := time.Now().Add(10 * time.Second); eng.Stats().Redirects < uint64(i+1); {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: no TRYAGAIN for slot of %s", round, a)
				}
				time.Sleep(time.Millisecond)
			}
		}
		const workers, perWorker = 8, 6000
		fs := make([][]*futures.Future[struct{}], workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					k := fmt.Sprintf("cp:%d:%d", w, i)
					if i%8 != 0 {
						k = fmt.Sprintf("{%s}%s", tags[(w+i)%len(tags)], k)
					}
					fs[w] = append(fs[w], eng.Set(context.Background(), k, "v", 0))
				}
			}()
		}
		wg.Wait()
		start := time.Now()
		closeErr := eng.Close()
		d := time.Since(start)
		pending := pendingFutures(held)
		total := len(held)
		for _, f := range fs {
			pending += pendingFutures(f)
			total += len(f)
		}
		if pending > 0 {
			t.Fatalf("round %d: %d of %d futures still pending when Close (DrainTimeout 0, %s, err %v) returned",
				round, pending, total, d, closeErr)
		}
		for _, f := range held {
			if _, err := f.Await(ctx); !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("round %d: MGET held through TRYAGAIN: %v, want ErrClosed", round, err)
			}
		}
		t.Logf("round %d: Close in %s (err %v), %d futures complete", round, d, closeErr, total)
	}
}

// tagOfSlot returns a hash tag whose keys hash to slot.
func tagOfSlot(slot int) string {
	for i := 0; ; i++ {
		if tag := fmt.Sprintf("t%d", i); valkeytest.HashSlot(tag) == slot {
			return tag
		}
	}
}
