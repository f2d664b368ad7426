package engine_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
)

// A callback that fires another command into a full mailbox under
// BackpressureBlock must not deadlock the connection actor that completed
// its future: callbacks run off the actor (futures' callback executor).
func TestCallbacksFireCommandsIntoFullMailbox(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		c.MailboxCapacity = 8
		c.Backpressure = config.BackpressureBlock
		return c
	})
	// The commands' context: cancelled when the test gives up, so that a
	// deadlocked actor (the old behaviour) lets the engine close.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(n)
	var failed atomic.Int64
	go func() {
		for range n {
			eng.Incr(ctx, "cb:first").OnComplete(func(_ int64, err error) {
				if err != nil {
					failed.Add(1)
					wg.Done()
					return
				}
				eng.Incr(ctx, "cb:second").OnComplete(func(_ int64, err error) {
					if err != nil {
						failed.Add(1)
					}
					wg.Done()
				})
			})
		}
	}()
	all := make(chan struct{})
	go func() {
		wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("callbacks firing commands into a full mailbox deadlocked")
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d commands failed", f)
	}
	actx := ctxT(t)
	for _, k := range []string{"cb:first", "cb:second"} {
		v, err := eng.Get(actx, k).Await(actx)
		if err != nil || v != strconv.Itoa(n) {
			t.Fatalf("%s = %q, %v; want %d", k, v, err, n)
		}
	}
}
