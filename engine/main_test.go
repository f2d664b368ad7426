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
	"github.com/vactor-io/vactor/engine/enginetest"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// newEngine starts a server and an engine on it; both stop at cleanup.
func newEngine(t testing.TB, mod ...func(config.Config) config.Config) (*engine.Engine, *valkeytest.Server) {
	t.Helper()
	srv := valkeytest.Start(t)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	for _, m := range mod {
		cfg = m(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := open(ctx, t, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng, srv
}

// engineOn starts an engine with cfg, failing the test if it cannot; the
// caller closes it (tests that check for leaked goroutines close it
// before the check).
func engineOn(t testing.TB, cfg config.Config) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := open(ctx, t, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	return eng
}

// open is engine.New with a checked logger (withLogCheck) unless cfg has a
// logger: every engine a test starts is under the no-secret check.
func open(ctx context.Context, t testing.TB, cfg config.Config) (*engine.Engine, error) {
	cfg, _ = withLogCheck(t, cfg)
	return engine.New(ctx, cfg)
}

// checked are the scenario options of the engine's own runs of the
// enginetest scenarios: the default driver, each engine's log checked.
func checked(o enginetest.Options) enginetest.Options {
	o.Configure = func(t testing.TB, cfg config.Config) config.Config {
		checked, _ := withLogCheck(t, cfg)
		return checked
	}
	return o
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bulkCtxT is ctxT for the tests that move a million commands: bounded by
// their operation count, they ran 26 s and more under -race on a busy
// 2-core machine (about 40,000 SETs/s), so their context only guards
// against a hang.
func bulkCtxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// closeOutstanding fires n SETs, closes eng within limit, and checks that
// every future completed, written or with ErrClosed; it returns how many
// were written.
func closeOutstanding(t *testing.T, ctx context.Context, eng *engine.Engine, n int, limit time.Duration) int {
	t.Helper()
	fs := make([]*futures.Future[struct{}], n)
	for i := range fs {
		fs[i] = eng.Set(ctx, fmt.Sprintf("close:%d", i), "v", 0)
	}
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > limit {
		t.Fatalf("Close took %s with %d outstanding, want < %s", d, n, limit)
	}
	ok, closed := 0, 0
	for i, f := range fs {
		if !f.IsDone() {
			t.Fatalf("future %d still pending after Close", i)
		}
		switch err := f.Err(ctx); {
		case err == nil:
			ok++
		case errors.Is(err, engine.ErrClosed):
			closed++
		default:
			t.Fatalf("future %d: unexpected error %v", i, err)
		}
	}
	t.Logf("Close with %d outstanding: %d written, %d failed with ErrClosed, in %s", n, ok, closed, time.Since(start))
	return ok
}

// pauseServer stops srv (SIGSTOP) and returns resume, which lets it run
// again (SIGCONT) once, failing the test if it cannot; resume runs at
// cleanup if the test has not called it.
func pauseServer(t testing.TB, srv *valkeytest.Server) (resume func()) {
	t.Helper()
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := srv.Resume(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
