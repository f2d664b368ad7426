package enginetest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// startServer starts a server for t and returns its address.
func startServer(t *testing.T, opts ...valkeytest.Options) string {
	t.Helper()
	return valkeytest.Start(t, opts...).Addr()
}

// Order: commands to the same key from one goroutine complete in the
// order they were issued (DESIGN rule 2), whatever batches and
// connections carry them: 32 goroutines, each firing SET, GET, a script
// reading the key, and INCR on a counter without waiting in between, with
// PoolSize 4; every read sees the write before it, every INCR returns the
// next value.
func Order(t *testing.T, o Options) {
	eng := o.newEngine(t, o.Config(startServer(t)).WithPoolSize(4))
	ctx := ctxT(t)
	const (
		goroutines = 32
		rounds     = 200
		get        = "return redis.call('GET', KEYS[1])"
	)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			k, n := fmt.Sprintf("order:%d", g), fmt.Sprintf("order:%d:n", g)
			type round struct {
				get  *futures.Future[string]
				eval *futures.Future[string]
				incr *futures.Future[int64]
			}
			rs := make([]round, rounds)
			for i := range rounds {
				eng.Set(ctx, k, strconv.Itoa(i), 0)
				rs[i].get = eng.Get(ctx, k)
				rs[i].eval = futures.Then(eng.Do(ctx, "EVAL", get, "1", k), func(r engine.Reply) (string, error) { return r.String() })
				rs[i].incr = eng.Incr(ctx, n)
			}
			for i, r := range rs {
				want := strconv.Itoa(i)
				if v, err := r.get.Await(ctx); err != nil || v != want {
					errs <- fmt.Errorf("%s round %d: GET = %q, %v; want %q (order broken)", k, i, v, err, want)
					return
				}
				if v, err := r.eval.Await(ctx); err != nil || v != want {
					errs <- fmt.Errorf("%s round %d: EVAL GET = %q, %v; want %q (order broken)", k, i, v, err, want)
					return
				}
				if v, err := r.incr.Await(ctx); err != nil || v != int64(i+1) {
					errs <- fmt.Errorf("%s round %d: INCR = %d, %v; want %d (order broken)", n, i, v, err, i+1)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
