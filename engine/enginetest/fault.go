package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// faultConfig is the configuration the fault scenarios run with: the
// defaults (DialTimeout 5s, ReadTimeout and WriteTimeout 3s: what users
// get), with a breaker that half-opens after 250ms instead of 1s so that
// recovery within 1s of a restart is measured against the probe, not the
// wait.
func (o Options) faultConfig(addr string) config.Config {
	return o.Config(addr).WithCircuitBreakerOpenTimeout(250 * time.Millisecond)
}

// FaultKillRestart is fault test 1: the server is killed and restarted 20
// times while 64 goroutines write distinct keys. Every future completes,
// every write whose future succeeded is on the server after the last
// restart (AOF, appendfsync always), and the engine serves again within
// 1s of each restart.
func FaultKillRestart(t *testing.T, o Options) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	eng, err := o.open(context.Background(), t, o.faultConfig(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   []string
		issued  atomic.Int64
		failed  atomic.Int64
		pending atomic.Int64
	)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("w%d:%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				issued.Add(1)
				pending.Add(1)
				f := eng.Set(ctx, key, key, 0)
				_, err := f.Await(context.Background()) // no bound: every future must complete
				pending.Add(-1)
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
					continue
				}
				failed.Add(1)
				time.Sleep(time.Millisecond) // pacing while the node is down
			}
		}()
	}

	var worst time.Duration
	for round := range 20 {
		time.Sleep(50 * time.Millisecond) // traffic before the kill
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // traffic against a dead server
		if err := srv.Restart(); err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		d := WaitServing(t, eng, 3*time.Second)
		worst = max(worst, d)
		if d > time.Second {
			t.Errorf("round %d: serving again %s after the restart, want < 1s", round, d)
		}
	}
	stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("writers still waiting 10s after stop: %d futures pending", pending.Load())
	}

	// Every acknowledged write is on the server.
	mu.Lock()
	keys := acked
	mu.Unlock()
	ctx := ctxT(t)
	check := o.newEngine(t, o.Config(srv.Addr()))
	lost := Missing(t, ctx, check, keys)
	st := eng.Stats()
	t.Logf("issued %d, acknowledged %d, failed %d, lost %d; slowest recovery %s; reconnects %d, retries %d, outcome unknown %d",
		issued.Load(), len(keys), failed.Load(), lost, worst, st.Reconnects, st.Retries, st.OutcomeUnknown)
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
	if len(keys) == 0 {
		t.Fatal("no write was acknowledged")
	}
	switch {
	case !o.DriverReconnects && st.Reconnects < 20:
		t.Fatalf("%d reconnects recorded for 20 restarts", st.Reconnects)
	case o.DriverReconnects && failed.Load() == 0:
		t.Fatal("no write failed over 20 restarts: the faults did not bite")
	}
}

// Missing returns how many of keys do not exist, asking through eng; an
// error fails the test.
func Missing(t *testing.T, ctx context.Context, eng *engine.Engine, keys []string) int {
	t.Helper()
	fs := make([]*futures.Future[int64], len(keys))
	for i, k := range keys {
		fs[i] = eng.Exists(ctx, k)
	}
	lost := 0
	for i, f := range fs {
		n, err := f.Await(ctx)
		if err != nil {
			t.Fatalf("EXISTS %s: %v", keys[i], err)
		}
		if n != 1 {
			lost++
		}
	}
	return lost
}

// FaultResetAfterWrite is fault test 3: INCR through a proxy that resets
// connections after the request reached the server. The counter never
// exceeds the futures that succeeded plus those that failed with
// ErrOutcomeUnknown: nothing is applied twice. Marked idempotent, the same
// INCR is sent again after the reconnect and succeeds.
func FaultResetAfterWrite(t *testing.T, o Options) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv := valkeytest.Start(t)
	px := valkeytest.ProxyFor(t, srv.Addr())
	eng, err := o.open(context.Background(), t, o.faultConfig(px.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := px.ResetAfterWrite(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	fs := make([]*futures.Future[int64], n)
	for i := range fs {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		fs[i] = eng.Incr(cctx, "ctr")
		if i%20 == 19 {
			_ = fs[i].Err(ctx) // let the failures and reconnects interleave
		}
	}
	ok, unknown, other := 0, 0, map[string]int{}
	for _, f := range fs {
		_, err := f.Await(ctx)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, engine.ErrOutcomeUnknown):
			unknown++
		default:
			other[firstWords(err)]++
		}
	}
	if err := px.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	WaitServing(t, eng, time.Second)
	applied := 0
	got, err := srv.Do("GET", "ctr")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := got.(string); ok {
		if applied, err = strconv.Atoi(s); err != nil {
			t.Fatalf("counter %q: %v", s, err)
		}
	}
	t.Logf("INCR x%d under reset-after-write: %d ok, %d outcome unknown, other %v; counter %d", n, ok, unknown, other, applied)
	if unknown == 0 {
		t.Fatal("no command failed with ErrOutcomeUnknown: the toxic did not bite")
	}
	if applied > ok+unknown {
		t.Fatalf("counter %d > %d ok + %d unknown: a command was applied twice", applied, ok, unknown)
	}

	// The same, marked idempotent: kept, sent again after the reconnect,
	// and successful once the connection is healthy.
	if err := px.ResetAfterWrite(); err != nil {
		t.Fatal(err)
	}
	before := eng.Stats().Retries
	ictx, cancel := context.WithTimeout(engine.WithIdempotent(ctx), 5*time.Second)
	defer cancel()
	f := eng.Incr(ictx, "ictr")
	for eng.Stats().Retries == before {
		if f.IsDone() {
			_, err := f.Await(ctx)
			t.Fatalf("idempotent INCR completed without a retry: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := px.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	v, err := f.Await(ctx)
	if err != nil {
		t.Fatalf("idempotent INCR after the toxic was removed: %v", err)
	}
	t.Logf("idempotent INCR retried and returned %d", v)
	if v < 1 {
		t.Fatalf("INCR returned %d", v)
	}
}

func firstWords(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}
