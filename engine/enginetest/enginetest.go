package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// Options says which driver the scenarios run over.
type Options struct {
	// Driver is the registered name of the driver. Default "valkey-go".
	Driver string
	// DriverReconnects says that the driver reconnects on its own, under
	// the engine (glide does: it queues commands while it reconnects). A
	// restart it absorbs never reaches the engine, so FaultKillRestart
	// then asks only that some writes failed (the faults bit), not for one
	// engine reconnect per restart. Default false.
	DriverReconnects bool
	// Configure, when set, adjusts every configuration a scenario starts
	// an engine with, after the scenario's own settings: the engine's
	// tests give each engine a logger that checks its lines this way.
	Configure func(t testing.TB, cfg config.Config) config.Config
}

// Config returns the default configuration with o's driver, on addrs
// (Configure is not applied: newEngine applies it).
func (o Options) Config(addrs ...string) config.Config {
	cfg := config.DefaultConfig().WithAddrs(addrs...)
	if o.Driver != "" {
		cfg = cfg.WithDriver(o.Driver)
	}
	return cfg
}

// Run runs every scenario as a subtest of t.
func Run(t *testing.T, o Options) {
	t.Run("Order", func(t *testing.T) { Order(t, o) })
	t.Run("FaultKillRestart", func(t *testing.T) { FaultKillRestart(t, o) })
	t.Run("FaultResetAfterWrite", func(t *testing.T) { FaultResetAfterWrite(t, o) })
	t.Run("ClusterResharding", func(t *testing.T) { ClusterResharding(t, o) })
	t.Run("CloseStalledServer", func(t *testing.T) { CloseStalledServer(t, o) })
	t.Run("Commands", func(t *testing.T) { Commands(t, o) })
	t.Run("PipelineCommands", func(t *testing.T) { PipelineCommands(t, o) })
}

// newEngine starts an engine with cfg (and o.Configure), failing the test
// if it cannot; it is closed at cleanup.
func (o Options) newEngine(t *testing.T, cfg config.Config) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := o.open(ctx, t, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// open is engine.New with cfg adjusted by o.Configure.
func (o Options) open(ctx context.Context, t *testing.T, cfg config.Config) (*engine.Engine, error) {
	if o.Configure != nil {
		cfg = o.Configure(t, cfg)
	}
	return engine.New(ctx, cfg)
}

// ctxT returns a context that ends after 30 s or at cleanup.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WaitServing returns how long it took until a SET through eng succeeds;
// the test fails if none did within limit. Each probe's deadline is what
// is left of limit (100 ms at least), not a fixed short one: a probe
// abandoned at its deadline costs the engine a reconnect and a breaker
// failure (docs/reliability.md), so on a busy machine short probes that
// the server answers a little late could open the breaker themselves
// and keep the engine from serving until the limit.
func WaitServing(t *testing.T, eng *engine.Engine, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), max(limit-time.Since(start), 100*time.Millisecond))
		_, err := eng.Set(ctx, "probe", "x", 0).Await(ctx)
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("engine not serving %s after restart: last error %v (stats %+v)", limit, err, eng.Stats())
		}
		time.Sleep(5 * time.Millisecond) // pacing between probes, not synchronisation
	}
}
