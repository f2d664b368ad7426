package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// BenchmarkFireMany: 4 goroutines, each firing 1,000 SETs (64-byte values,
// the 100,000-key space) and then waiting for all of them, until b.N SETs
// are done:
//
//   - engine: eng.Set futures, then futures.All;
//   - valkeygo: valkey-go DoMulti of the same 1,000 commands (defaults);
//   - engine-pipeline: the same 1,000 SETs in an engine Pipeline, then
//     its Exec (the engine's API for a known batch: one post for them
//     all instead of one per command);
//   - engine-pool2: engine with PoolSize 2 (two connection actors, so
//     two pipelines in flight, on two connections);
//   - valkeygo-1conn: valkey-go on one connection (PipelineMultiplex -1).
//     With its defaults valkey-go pipelines over 2 connections when
//     GOMAXPROCS is 2 or 3 (4 from 4 CPUs on) and sends each DoMulti on
//     one picked at random, so the valkeygo contender has up to two
//     batches in flight on two sockets where the engine's default
//     (PoolSize 1) has one.
//
// The contenders are interleaved; benchratio prints engine ÷ valkeygo
// (the row "FireMany", g=4); the others are read from the raw lines.
func BenchmarkFireMany(b *testing.B) {
	ks := loadBigKeyspace(b)
	b.Run("g=4/engine", func(b *testing.B) {
		fireManyEngine(b, ks, 1, fireFutures)
	})
	b.Run("g=4/engine-pipeline", func(b *testing.B) {
		fireManyEngine(b, ks, 1, func(eng *engine.Engine, ctx context.Context, chunk []string, fs []*futures.Future[struct{}]) error {
			p := eng.Pipeline()
			for i, k := range chunk {
				fs[i] = p.Set(k, bigValue, 0)
			}
			return p.Exec(ctx)
		})
	})
	b.Run("g=4/engine-pool2", func(b *testing.B) {
		fireManyEngine(b, ks, 2, fireFutures)
	})
	b.Run("g=4/valkeygo", func(b *testing.B) {
		fireManyValkeyGo(b, ks, valkey.ClientOption{InitAddress: []string{addr}})
	})
	b.Run("g=4/valkeygo-1conn", func(b *testing.B) {
		fireManyValkeyGo(b, ks, valkey.ClientOption{InitAddress: []string{addr}, PipelineMultiplex: -1})
	})
}

// fireFutures fires chunk's SETs as engine futures and waits for them all.
func fireFutures(eng *engine.Engine, ctx context.Context, chunk []string, fs []*futures.Future[struct{}]) error {
	for i, k := range chunk {
		fs[i] = eng.Set(ctx, k, bigValue, 0)
	}
	_, err := futures.All(ctx, fs[:len(chunk)]...)
	return err
}

// fireManyValkeyGo runs runFireMany with valkey-go DoMulti on a client
// made with opt.
func fireManyValkeyGo(b *testing.B, ks []string, opt valkey.ClientOption) {
	c, err := valkey.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	runFireMany(b, ks, func(ctx context.Context, chunk []string, _ []*futures.Future[struct{}]) error {
		return doMultiSets(ctx, c, chunk, bigValue)
	})
}

// fireManyEngine runs runFireMany with fire on an engine with the
// default config but for its PoolSize, and reports its commands per
// pipeline.
func fireManyEngine(b *testing.B, ks []string, pool int, fire func(eng *engine.Engine, ctx context.Context, chunk []string, fs []*futures.Future[struct{}]) error) {
	eng, err := engine.New(context.Background(), config.DefaultConfig().WithAddrs(addr).WithPoolSize(pool))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	s0 := eng.Stats()
	defer func() {
		s1 := eng.Stats()
		reportBatch(b, s1.Commands-s0.Commands, s1.Batches-s0.Batches)
	}()
	runFireMany(b, ks, func(ctx context.Context, chunk []string, fs []*futures.Future[struct{}]) error {
		return fire(eng, ctx, chunk, fs)
	})
}

// fireChunk is how many commands each goroutine fires before it waits.
const fireChunk = 1000

// runFireMany runs b.N SETs (rounded up to whole chunks) from 4 goroutines
// with fire and reports ops/s and the client's CPU per SET.
func runFireMany(b *testing.B, ks []string, fire func(ctx context.Context, chunk []string, fs []*futures.Future[struct{}]) error) {
	ctx := context.Background()
	chunks := int64((b.N + fireChunk - 1) / fireChunk)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	rt0 := readRuntime()
	cpu0 := cpuTime()
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs := make([]*futures.Future[struct{}], fireChunk)
			for c := next.Add(1) - 1; c < chunks; c = next.Add(1) - 1 {
				off := int(c*fireChunk) % len(ks)
				chunk := ks[off:min(off+fireChunk, len(ks))]
				if err := fire(ctx, chunk, fs); err != nil {
					failed.Store(err)
					return
				}
			}
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
	reportRuntime(b, rt0, rt1, int(chunks*fireChunk))
	n := float64(chunks * fireChunk)
	b.ReportMetric(n/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/op")
	b.ReportMetric(0, "ns/op")
}
