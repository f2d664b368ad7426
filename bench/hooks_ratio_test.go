package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHooksRatio measures the hooks' cost as ratios, the figures
// issue 11 sets (the metrics hook ≥ 0.9× the engine without hooks at 256
// and 2,048 goroutines; tracing at 100% sampling ≥ 0.6×): the engine
// without hooks (bare), with the metrics hook (a Producer, as
// BenchmarkHooksGet's engine-otel-metrics), with the metrics and tracing
// (engine-otel-trace's) and with those and
// otelvactor.WithoutSamplerAttributes (late: engine-otel-trace-late's)
// live side by side in one process and run
// in turns of ratioTurn operations each, the order rotated every turn.
// This machine's throughput drifts by ±15% between runs a few seconds
// apart, and a contender that runs after another inherits its heap and
// scheduler state, so that per-run figures (BenchmarkHooksGet; and
// -count, which repeats a sub-benchmark before the next one starts) put
// a 0.8-1.0 spread on the same code; turns of a fifth of a second give
// the contenders the same phases. b.N is each contender's operations.
// It reports each one's ops/s, and for the others their throughput over
// bare's (metrics-ratio, trace-ratio, late-ratio) and bare's client CPU
// per operation over theirs (metrics-cpu, trace-cpu, late-cpu: below 1 by
// the CPU the hook costs, its goroutine's included).
//
//	go test -c -o bench.test ./bench
//	./bench.test -test.run '^$' -test.bench BenchmarkHooksRatio -test.benchtime 1200000x
func BenchmarkHooksRatio(b *testing.B) {
	for _, name := range []string{"get", "set"} {
		for _, g := range []int{256, 2048} {
			b.Run(fmt.Sprintf("%s/g=%d", name, g), func(b *testing.B) {
				cs := make([]client, len(hookContenders))
				for _, name := range []string{"engine", "engine-otel-metrics", "engine-otel-trace", "engine-otel-trace-late"} {
					i := contenderIndex(b, name)
					cs[i] = hookContenders[i].new(b)
					defer cs[i].close()
				}
				ids := []int{contenderIndex(b, "engine"), contenderIndex(b, "engine-otel-metrics"), contenderIndex(b, "engine-otel-trace"), contenderIndex(b, "engine-otel-trace-late")}
				labels := []string{"bare", "metrics", "trace", "late"}
				for _, i := range ids {
					for _, k := range keys {
						if err := cs[i].set(context.Background(), k); err != nil {
							b.Fatal(err)
						}
					}
				}
				pick := func(c client) op { return c.get }
				if name == "set" {
					pick = func(c client) op { return c.set }
				}
				spent := make([]turnCost, len(ids))
				b.ResetTimer()
				for done, turn := 0, 0; done < b.N; turn++ {
					n := min(ratioTurn, b.N-done)
					for j := range ids {
						k := (turn + j) % len(ids)
						cost, err := runTurn(g, n, pick(cs[ids[k]]))
						if err != nil {
							b.Fatal(err)
						}
						spent[k].wall += cost.wall
						spent[k].cpu += cost.cpu
					}
					done += n
				}
				b.StopTimer()
				for k, i := range ids {
					if k > 0 && cs[i].hookDropped != nil {
						if n := cs[i].hookDropped(); n > 0 {
							// A hook that fell behind skipped events: its
							// ratio flatters it. Say so rather than report it.
							b.Errorf("%s: %d hook events dropped (the hook goroutine fell behind)", labels[k], n)
						}
					}
				}
				ops := func(k int) float64 { return float64(b.N) / spent[k].wall.Seconds() }
				for k, l := range labels {
					b.ReportMetric(ops(k), l+"-ops/s")
					if k > 0 {
						b.ReportMetric(ops(k)/ops(0), l+"-ratio")
						b.ReportMetric(float64(spent[0].cpu)/float64(spent[k].cpu), l+"-cpu")
					}
				}
				b.ReportMetric(0, "ns/op") // several contenders: read the ratios
			})
		}
	}
}

// contenderIndex returns the index of hookContenders' contender name.
func contenderIndex(b *testing.B, name string) int {
	for i, c := range hookContenders {
		if c.name == name {
			return i
		}
	}
	b.Fatalf("no hook contender %q", name)
	return -1
}

// ratioTurn is the operations of one contender's turn in
// BenchmarkHooksRatio: about a fifth of a second.
const ratioTurn = 100_000

// turnCost is the time a turn took and the client CPU it used.
type turnCost struct{ wall, cpu time.Duration }

// runTurn runs n operations of do from g goroutines over the keys.
func runTurn(g, n int, do op) (turnCost, error) {
	ctx := context.Background()
	nk := int64(len(keys))
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := do(ctx, keys[i%nk]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cost := turnCost{wall: time.Since(start), cpu: cpuTime() - cpu0}
	if err, _ := failed.Load().(error); err != nil {
		return cost, err
	}
	return cost, nil
}
