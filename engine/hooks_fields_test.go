package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// The PostExecution events of commands answered in a pipeline (completed
// at the pipeline's answered time) and the others (a transaction's, a
// command failed unsent: completed when they fail) carry the same
// fields. DB is the engine's (3 here: the event reaches it through the
// bus, not the request), Done and Duration fall
// within the run, a pipelined command names its node and pipeline, and
// the context is PreExecution's.
func TestHooksEventFieldsBothPaths(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithDB(3).WithHooks(rec) })
	ctx := ctxT(t)
	begun := time.Now()

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("hd:%d", i%7)
			if i%2 == 0 {
				errs <- eng.Set(ctx, k, "v", 0).Err(ctx)
				return
			}
			if _, err := eng.Get(ctx, k).Await(ctx); err != nil && !errors.Is(err, engine.ErrNil) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// An error reply: answered in a pipeline, deferred like the rest.
	if err := eng.LPush(ctx, "hd:0", "x").Err(ctx); err == nil {
		t.Fatal("LPUSH on a string succeeded")
	}
	// A transaction's commands: their pipeline has no answered time.
	tx := eng.Tx()
	tx.Set("hd:tx", "v", 0)
	tx.Incr("hd:txn")
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// A command failed unsent: its context has ended.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := eng.Set(gone, "hd:gone", "v", 0).Err(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("SET with an ended context: %v", err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()

	rec.with(func() {
		if len(rec.executed) != len(rec.fired) || len(rec.executed) < n+4 {
			t.Fatalf("%d PreExecution, %d PostExecution, want %d each", len(rec.fired), len(rec.executed), n+4)
		}
		piped, txs, unsent, wrongType := 0, 0, 0, 0
		for i, ev := range rec.executed {
			if ev.DB != 3 {
				t.Errorf("%s: DB %d, want 3", ev.Name, ev.DB)
			}
			if ev.Done.Before(begun) || ev.Done.After(ended) || ev.Duration <= 0 || ev.Done.Add(-ev.Duration).Before(begun.Add(-time.Millisecond)) {
				t.Errorf("%s: done %v, duration %v, outside the run (%v to %v)", ev.Name, ev.Done, ev.Duration, begun, ended)
			}
			if rec.execCtx[i].Value(hookSeq{}) == nil {
				t.Errorf("%s: PostExecution without PreExecution's context", ev.Name)
			}
			if ev.Args < 1 {
				t.Errorf("%s: %d arguments", ev.Name, ev.Args)
			}
			switch {
			case errors.Is(ev.Err, context.Canceled):
				unsent++
				if ev.Node != "" || ev.Pipeline != 0 || ev.PipelineSize != 0 {
					t.Errorf("%s failed unsent: node %q pipeline %d size %d", ev.Name, ev.Node, ev.Pipeline, ev.PipelineSize)
				}
			default:
				if ev.Node != srv.Addr() || ev.Pipeline == 0 || ev.PipelineSize < 1 {
					t.Errorf("%s: node %q pipeline %d size %d", ev.Name, ev.Node, ev.Pipeline, ev.PipelineSize)
				}
				if ev.Name == "INCR" {
					txs++
				} else if ev.Name == "LPUSH" && ev.Err != nil {
					wrongType++
				} else {
					piped++
				}
			}
		}
		if piped < n || txs != 1 || unsent != 1 || wrongType != 1 {
			t.Errorf("%d pipelined, %d INCR in the transaction, %d unsent, %d WRONGTYPE; want >= %d, 1, 1, 1", piped, txs, unsent, wrongType, n)
		}
	})
}
