package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

func TestSetGetRoundTrip(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "value", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := eng.Get(ctx, "k").Await(ctx)
	if err != nil || v != "value" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if _, err := eng.Get(ctx, "missing").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("Get missing err = %v, want ErrNil", err)
	}
	n, err := eng.Incr(ctx, "n").Await(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	d, err := eng.Del(ctx, "k", "n", "missing").Await(ctx)
	if err != nil || d != 2 {
		t.Fatalf("Del = %d, %v", d, err)
	}
	r, err := eng.Do(ctx, "HSET", "h", "f", "v").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Int64(); n != 1 {
		t.Fatalf("HSET reply %v", r)
	}
}

// Commands from one goroutine to one key complete in issue order, even
// when 20,000 are fired before the first await.
func TestOrderOneKey20000(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	const n = 20000
	fs := make([]*futures.Future[int64], n)
	for i := range fs {
		fs[i] = eng.Incr(ctx, "order")
	}
	for i, f := range fs {
		v, err := f.Await(ctx)
		if err != nil {
			t.Fatalf("incr %d: %v", i, err)
		}
		if v != int64(i+1) {
			t.Fatalf("incr %d returned %d: out of order", i, v)
		}
	}
	st := eng.Stats()
	if st.Batches == 0 || st.MeanBatch <= 1 {
		t.Fatalf("expected batching, stats %+v", st)
	}
}

// 1,000 goroutines × 40 set/get pairs all round-trip.
func TestConcurrentSetGet(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				k := fmt.Sprintf("g%d:%d", g, i)
				v := fmt.Sprintf("v%d-%d", g, i)
				if _, err := eng.Set(ctx, k, v, 0).Await(ctx); err != nil {
					errs <- err
					return
				}
				got, err := eng.Get(ctx, k).Await(ctx)
				if err != nil || got != v {
					errs <- fmt.Errorf("get %s = %q, %v; want %q", k, got, err, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestCancelledBeforeWriteIsNeverWritten(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := eng.Set(cctx, "never", "x", 0).Await(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Set err = %v, want context.Canceled", err)
	}
	n, err := eng.Exists(ctx, "never").Await(ctx)
	if err != nil || n != 0 {
		t.Fatalf("EXISTS never = %d, %v; want 0", n, err)
	}
}
