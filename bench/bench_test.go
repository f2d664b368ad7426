package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

var (
	addr string
	keys [1024]string
)

func TestMain(m *testing.M) {
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:%d", i)
	}
	if a := os.Getenv("VALKEY_ADDR"); a != "" {
		addr = a
		code := m.Run()
		if clusterStop != nil {
			clusterStop()
		}
		if tlsStop != nil {
			tlsStop()
		}
		os.Exit(code)
	}
	srv, err := valkeytest.StartServer(valkeytest.Options{Name: "bench"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	addr = srv.Addr()
	code := m.Run()
	_ = srv.Stop()
	if clusterStop != nil {
		clusterStop()
	}
	if tlsStop != nil {
		tlsStop()
	}
	os.Exit(code)
}

// op runs one operation against key; it returns an error for a failure.
type op func(ctx context.Context, key string) error

// client is one contender: a name, its GET and SET, and its cleanup.
type client struct {
	name  string
	get   op
	set   op
	setv  func(ctx context.Context, key, value string) error
	close func()
	// pipelines, when set, returns the commands sent and the pipelines
	// they went in so far (the engine's Stats), for the batch metric.
	pipelines func() (commands, batches uint64)
	// hookDropped, when set, returns the hook events dropped so far
	// (Stats.HookDropped): a hook that falls behind drops events, and
	// so does less work than it would keep up with.
	hookDropped func() uint64
}

// newEngineClient is the engine contender over cfg.
func newEngineClient(tb testing.TB, cfg config.Config) client {
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return client{
		name: "engine",
		get: func(ctx context.Context, k string) error {
			_, err := eng.Get(ctx, k).Await(ctx)
			return err
		},
		set: func(ctx context.Context, k string) error {
			_, err := eng.Set(ctx, k, "0123456789abcdef", 0).Await(ctx)
			return err
		},
		setv: func(ctx context.Context, k, v string) error {
			_, err := eng.Set(ctx, k, v, 0).Await(ctx)
			return err
		},
		close: func() { _ = eng.Close() },
		pipelines: func() (uint64, uint64) {
			st := eng.Stats()
			return st.Commands, st.Batches
		},
		hookDropped: func() uint64 { return eng.Stats().HookDropped },
	}
}

// newValkeyClient is a plain valkey-go contender: a standalone client for
// one address, a cluster client for seeds.
func newValkeyClient(tb testing.TB, name string, addrs []string, flushDelay time.Duration) client {
	return newValkeyClientWith(tb, name, valkey.ClientOption{InitAddress: addrs, MaxFlushDelay: flushDelay})
}

// newValkeyClientWith is a plain valkey-go contender with opt.
func newValkeyClientWith(tb testing.TB, name string, opt valkey.ClientOption) client {
	c, err := valkey.NewClient(opt)
	if err != nil {
		tb.Fatal(err)
	}
	return client{
		name: name,
		get: func(ctx context.Context, k string) error {
			_, err := c.Do(ctx, c.B().Get().Key(k).Build()).ToString()
			return err
		},
		set: func(ctx context.Context, k string) error {
			return c.Do(ctx, c.B().Set().Key(k).Value("0123456789abcdef").Build()).Error()
		},
		setv: func(ctx context.Context, k, v string) error {
			return c.Do(ctx, c.B().Set().Key(k).Value(v).Build()).Error()
		},
		close: c.Close,
	}
}

// contender names a way to make a client.
type contender struct {
	name string
	new  func(tb testing.TB) client
}

// contendersFor returns the engine and valkey-go (defaults, and
// MaxFlushDelay 20µs) against the addresses addrs(tb) gives.
func contendersFor(addrs func(testing.TB) []string, cluster bool) []contender {
	return []contender{
		{"engine", func(tb testing.TB) client {
			return newEngineClient(tb, config.DefaultConfig().WithAddrs(addrs(tb)...).WithClusterMode(cluster))
		}},
		{"valkeygo", func(tb testing.TB) client { return newValkeyClient(tb, "valkeygo", addrs(tb), 0) }},
		{"valkeygo-fd20", func(tb testing.TB) client {
			return newValkeyClient(tb, "valkeygo-fd20", addrs(tb), 20*time.Microsecond)
		}},
	}
}

var contenders = contendersFor(func(testing.TB) []string { return []string{addr} }, false)

var levels = []int{1, 16, 256, 2048}

// run drives b.N operations from g goroutines and reports ops/s, p50 and
// p99 latency.
func run(b *testing.B, g int, ks []string, do op) {
	nk := int64(len(ks))
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, g)
	per := b.N/g + 1
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ReportAllocs()
	b.ResetTimer()
	rt0 := readRuntime()
	cpu0 := cpuTime()
	start := time.Now()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples := make([]time.Duration, 0, per)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				t0 := time.Now()
				if err := do(ctx, ks[i%nk]); err != nil {
					failed.Store(err)
					return
				}
				samples = append(samples, time.Since(t0))
			}
			lat[w] = samples
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	rt1 := readRuntime()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	reportRuntime(b, rt0, rt1, b.N)
	all := make([]time.Duration, 0, b.N)
	for _, s := range lat {
		all = append(all, s...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op") // the client's CPU (user+system) per operation
	b.ReportMetric(0, "ns/op")                                           // ns/op of a concurrent run is misleading: read ops/s
}

// reportBatch reports the mean number of commands per pipeline (batch).
func reportBatch(b *testing.B, commands, batches uint64) {
	if batches > 0 {
		b.ReportMetric(float64(commands)/float64(batches), "batch")
	}
}

// cpuTime returns the process's CPU time so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bench runs pick's operation for every contender at every level, the
// contenders interleaved at each level, over the 1,024 keys.
func bench(b *testing.B, levels []int, contenders []contender, pick func(client) op) {
	benchKeys(b, levels, contenders, keys[:], true, pick)
}

// benchKeys is bench over ks; warm sets every key through each contender
// first (else the keys must exist already).
func benchKeys(b *testing.B, levels []int, contenders []contender, ks []string, warm bool, pick func(client) op) {
	for _, g := range levels {
		for _, c := range contenders {
			b.Run(fmt.Sprintf("g=%d/%s", g, c.name), func(b *testing.B) {
				cl := c.new(b)
				defer cl.close()
				// Warm up and make GET hit an existing key.
				if warm {
					for _, k := range ks {
						if err := cl.set(context.Background(), k); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					for _, k := range ks[:1024] { // warm the connections only
						if err := cl.get(context.Background(), k); err != nil && !valkey.IsValkeyNil(err) {
							b.Fatal(err)
						}
					}
				}
				var c0, n0 uint64
				if cl.pipelines != nil {
					c0, n0 = cl.pipelines()
				}
				run(b, g, ks, pick(cl))
				if cl.pipelines != nil {
					c1, n1 := cl.pipelines()
					reportBatch(b, c1-c0, n1-n0)
				}
			})
		}
	}
}

func BenchmarkGet(b *testing.B) { bench(b, levels, contenders, func(c client) op { return c.get }) }
func BenchmarkSet(b *testing.B) { bench(b, levels, contenders, func(c client) op { return c.set }) }

// BenchmarkGetDeadline is BenchmarkGet with a context that can end, as
// production callers pass: each GET gets its own one-second deadline
// (context.WithTimeout, cancelled after it), for every contender, and is
// awaited with it.
func BenchmarkGetDeadline(b *testing.B) {
	bench(b, []int{1, 256}, contenders, func(c client) op { return withDeadline(c.get) })
}

// withDeadline runs do with a context of its own, ending a second later.
func withDeadline(do op) op {
	return func(ctx context.Context, k string) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return do(ctx, k)
	}
}
