package glide_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	glideclient "github.com/valkey-io/valkey-glide/go/v2"
	glideconfig "github.com/valkey-io/valkey-glide/go/v2/config"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// The benchmarks compare, on one server, from the same goroutines (closed
// loop, 1,024 keys, 16-byte values), GET and SET through:
//
//   - engine-glide: the engine over the glide driver (defaults);
//   - engine-valkeygo: the engine over the valkey-go driver (defaults);
//   - glide: glide's own client (one glide.Client, its defaults),
//     Client.Get and Client.Set.
//
// Each level runs every contender in turn, so the contenders are
// interleaved; `make bench-glide` runs the whole set BENCHROUNDS times.
// Failed operations are counted (errors metric), not fatal: raw glide
// times out at 2,048 in flight with its default request timeout.

var (
	benchOnce sync.Once
	benchAddr string
	benchErr  error
	benchKeys [1024]string
)

// benchServer starts the benchmarks' server once per process (or uses
// $VALKEY_ADDR); TestMain stops it.
func benchServer(b *testing.B) string {
	benchOnce.Do(func() {
		for i := range benchKeys {
			benchKeys[i] = "bench:" + strconv.Itoa(i)
		}
		if a := os.Getenv("VALKEY_ADDR"); a != "" {
			benchAddr = a
			return
		}
		var srv *valkeytest.Server
		srv, benchErr = valkeytest.StartServer(valkeytest.Options{Name: "bench-glide"})
		if benchErr == nil {
			benchAddr = srv.Addr()
			stopBench = func() { _ = srv.Stop() }
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchAddr
}

// stopBench stops the server benchServer started (TestMain calls it:
// main_test.go).
var stopBench = func() {}

type benchOp func(ctx context.Context, key string) error

type benchClient struct {
	get, set benchOp
	close    func()
}

const benchValue = "0123456789abcdef"

func engineBench(b *testing.B, driver string) benchClient {
	cfg := config.DefaultConfig().WithAddrs(benchServer(b)).WithDriver(driver)
	if n, _ := strconv.Atoi(os.Getenv("BENCH_POOL")); n > 0 {
		cfg = cfg.WithPoolSize(n)
	}
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return benchClient{
		get: func(ctx context.Context, k string) error {
			_, err := eng.Get(ctx, k).Await(ctx)
			return err
		},
		set: func(ctx context.Context, k string) error {
			_, err := eng.Set(ctx, k, benchValue, 0).Await(ctx)
			return err
		},
		close: func() { _ = eng.Close() },
	}
}

func rawGlideBench(b *testing.B) benchClient {
	host, port := splitAddr(b, benchServer(b))
	c, err := glideclient.NewClient(glideconfig.NewClientConfiguration().WithAddress(&glideconfig.NodeAddress{Host: host, Port: port}))
	if err != nil {
		b.Fatal(err)
	}
	return benchClient{
		get: func(ctx context.Context, k string) error {
			_, err := c.Get(ctx, k)
			return err
		},
		set: func(ctx context.Context, k string) error {
			_, err := c.Set(ctx, k, benchValue)
			return err
		},
		close: c.Close,
	}
}

func splitAddr(b *testing.B, addr string) (string, int) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			p, err := strconv.Atoi(addr[i+1:])
			if err != nil {
				b.Fatal(err)
			}
			return addr[:i], p
		}
	}
	b.Fatalf("bad address %q", addr)
	return "", 0
}

var benchContenders = []struct {
	name string
	new  func(b *testing.B) benchClient
}{
	{"engine-glide", func(b *testing.B) benchClient { return engineBench(b, glide.Name) }},
	{"engine-valkeygo", func(b *testing.B) benchClient { return engineBench(b, "valkey-go") }},
	{"glide", rawGlideBench},
}

var benchLevels = []int{16, 256, 2048}

func BenchmarkGet(b *testing.B) { benchDrivers(b, func(c benchClient) benchOp { return c.get }) }
func BenchmarkSet(b *testing.B) { benchDrivers(b, func(c benchClient) benchOp { return c.set }) }

func benchDrivers(b *testing.B, pick func(benchClient) benchOp) {
	for _, g := range benchLevels {
		for _, c := range benchContenders {
			b.Run(fmt.Sprintf("g=%d/%s", g, c.name), func(b *testing.B) {
				cl := c.new(b)
				defer cl.close()
				ctx := context.Background()
				for _, k := range benchKeys { // warm up; GETs hit
					if err := cl.set(ctx, k); err != nil {
						b.Fatalf("warm-up SET: %v", err)
					}
				}
				closedLoop(b, g, pick(cl))
			})
		}
	}
}

// closedLoop drives b.N operations from g goroutines and reports ops/s
// and the failed operations.
func closedLoop(b *testing.B, g int, do benchOp) {
	ctx := context.Background()
	var next, failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range g {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := do(ctx, benchKeys[i&1023]); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(failed.Load()), "errors")
	b.ReportMetric(0, "ns/op")
	if err, _ := first.Load().(error); err != nil {
		b.Logf("%d of %d operations failed; first: %v", failed.Load(), b.N, err)
	}
}
