package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// The bulk-load benchmark: 1,000,000 SETs of 64-byte values to keys
// key:000000000000 .. key:000000999999 (the key names redis-benchmark -r
// uses), by
//
//   - writer: engine.BatchWriter with its defaults;
//   - valkeygo: plain valkey-go (valkey.NewClient defaults), DoMulti of
//     1,000 commands from 4 goroutines;
//   - engine-futures: the engine's own futures, 4 goroutines each firing
//     1,000 Sets and awaiting them (the connection-actor path);
//   - redis-benchmark -P 128 -t set -n 1000000 -d 64 -r 1000000 -q.
//
// Each iteration loads the 1M keys once (the server is emptied first).
// Each round runs every contender once, so they are interleaved over
// time; after each round the medians so far and the ratios are printed.
// `make bench-writer` runs it.

const (
	writerN      = 1_000_000
	writerValLen = 64
)

var (
	writerKeysOnce sync.Once
	writerKeys     []string
	writerValue    = strings.Repeat("v", writerValLen)

	writerMu      sync.Mutex
	writerResults = map[string][]float64{} // contender -> ops/s per run
)

func loadKeys() []string {
	writerKeysOnce.Do(func() {
		writerKeys = make([]string, writerN)
		for i := range writerKeys {
			writerKeys[i] = fmt.Sprintf("key:%012d", i)
		}
	})
	return writerKeys
}

// loader loads the keys once and returns how long it took, or the
// ops/s it measured itself (redis-benchmark).
type loader struct {
	name string
	load func(tb testing.TB) (elapsed time.Duration, opsPerSec float64)
}

func writerLoaders() []loader {
	return []loader{
		{"writer", func(tb testing.TB) (time.Duration, float64) {
			return loadWriter(tb, engine.BatchWriterOptions{})
		}},
		{"valkeygo", loadValkeyGo},
		{"engine-futures", loadFutures},
		{"redis-benchmark", loadRedisBenchmark},
	}
}

// flushAll empties the server between runs.
func flushAll(tb testing.TB) {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(context.Background(), c.B().Flushall().Build()).Error(); err != nil {
		tb.Fatal(err)
	}
}

// dbSize checks the server holds the 1M keys.
func checkLoaded(tb testing.TB, name string) {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	n, err := c.Do(context.Background(), c.B().Dbsize().Build()).AsInt64()
	if err != nil {
		tb.Fatal(err)
	}
	// redis-benchmark -r picks keys at random: about 63% of the space.
	if name != "redis-benchmark" && n != writerN {
		tb.Fatalf("%s: DBSIZE %d after loading, want %d", name, n, writerN)
	}
}

func loadWriter(tb testing.TB, opts engine.BatchWriterOptions) (time.Duration, float64) {
	keys := loadKeys()
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(addr))
	if err != nil {
		tb.Fatal(err)
	}
	defer eng.Close()
	var failed atomic.Value
	opts.OnError = func(cmd []string, err error) { failed.Store(fmt.Errorf("%q: %w", cmd, err)) }
	w, err := eng.NewBatchWriter(opts)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	for _, k := range keys {
		if err := w.Set(ctx, k, writerValue, 0); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return elapsed, 0
}

// chunked runs do over the keys in chunks of 1,000 from 4 goroutines.
func chunked(tb testing.TB, do func(keys []string) error) time.Duration {
	keys := loadKeys()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1000)) - 1000
				if i >= len(keys) {
					return
				}
				if err := do(keys[i:min(i+1000, len(keys))]); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return elapsed
}

func loadValkeyGo(tb testing.TB) (time.Duration, float64) {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	return chunked(tb, func(keys []string) error { return doMultiSets(ctx, c, keys, writerValue) }), 0
}

func loadFutures(tb testing.TB) (time.Duration, float64) {
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(addr))
	if err != nil {
		tb.Fatal(err)
	}
	defer eng.Close()
	return chunked(tb, func(keys []string) error {
		fs := make([]*futures.Future[struct{}], len(keys))
		for i, k := range keys {
			fs[i] = eng.Set(ctx, k, writerValue, 0)
		}
		_, err := futures.All(ctx, fs...)
		return err
	}), 0
}

// benchmarkBinary finds redis-benchmark (or valkey-benchmark) on PATH.
func benchmarkBinary() (string, error) {
	for _, name := range []string{"redis-benchmark", "valkey-benchmark"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("neither redis-benchmark nor valkey-benchmark is on PATH: install redis-tools (apt) or valkey-tools")
}

var rbRate = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

func loadRedisBenchmark(tb testing.TB) (time.Duration, float64) {
	bin, err := benchmarkBinary()
	if err != nil {
		tb.Fatal(err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command(bin, "-h", host, "-p", port, "-P", "128", "-t", "set",
		"-n", strconv.Itoa(writerN), "-d", strconv.Itoa(writerValLen), "-r", strconv.Itoa(writerN), "-q").CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		tb.Fatalf("%s: %v\n%s", bin, err, out)
	}
	m := rbRate.FindAllSubmatch(out, -1)
	if m == nil {
		tb.Fatalf("%s: no SET rate in its output:\n%s", bin, out)
	}
	rate, err := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	if err != nil {
		tb.Fatal(err)
	}
	return elapsed, rate
}

// runLoader runs l once per b.N iteration on an emptied server and
// reports ops/s (median of the iterations) and the CPU time per 1M SETs
// of the client (this process and its children: redis-benchmark) and of
// the server (INFO cpu): the machine's cores are shared by both.
func runLoader(b *testing.B, l loader) float64 {
	loadKeys()
	var rates []float64
	var clientCPU, serverCPU time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		flushAll(b)
		c0, s0 := clientCPUTime(), serverCPUTime(b)
		b.StartTimer()
		elapsed, rate := l.load(b)
		b.StopTimer()
		clientCPU += clientCPUTime() - c0
		serverCPU += serverCPUTime(b) - s0
		checkLoaded(b, l.name)
		if rate == 0 {
			rate = writerN / elapsed.Seconds()
		}
		rates = append(rates, rate)
	}
	r := median(rates)
	b.ReportMetric(r, "ops/s")
	b.ReportMetric(float64(clientCPU.Milliseconds())/float64(b.N), "client-cpu-ms")
	b.ReportMetric(float64(serverCPU.Milliseconds())/float64(b.N), "server-cpu-ms")
	b.ReportMetric(0, "ns/op") // one op is 1M SETs: read ops/s
	return r
}

// clientCPUTime is the user+system CPU time of this process and of its
// waited-for children.
func clientCPUTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// serverCPUTime is the server's used_cpu_user + used_cpu_sys (INFO cpu).
func serverCPUTime(tb testing.TB) time.Duration {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	info, err := c.Do(context.Background(), c.B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkWriter loads 1M keys with each contender, in $BENCHROUNDS
// (default 1) interleaved rounds: run it with -benchtime 1x.
func BenchmarkWriter(b *testing.B) {
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("BENCHROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for range rounds {
		for _, l := range writerLoaders() {
			b.Run(l.name, func(b *testing.B) {
				r := runLoader(b, l)
				writerMu.Lock()
				writerResults[l.name] = append(writerResults[l.name], r)
				writerMu.Unlock()
			})
		}
		printWriterRatios()
	}
}

// printWriterRatios prints the medians over the rounds so far and the
// writer's ratios to the others.
func printWriterRatios() {
	writerMu.Lock()
	defer writerMu.Unlock()
	w := median(writerResults["writer"])
	if w == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "batch writer, 1M SETs of %d bytes, medians over %d round(s):\n", writerValLen, len(writerResults["writer"]))
	for _, l := range writerLoaders() {
		m := median(writerResults[l.name])
		if m == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-16s %10.0f ops/s   writer/%s = %.2fx\n", l.name, m, l.name, w/m)
	}
	fmt.Fprint(os.Stdout, b.String())
}

// BenchmarkWriterTuning loads 1M keys with the batch writer over a grid
// of connections per node and pipeline sizes, in $BENCHROUNDS interleaved
// rounds, to pick the defaults.
func BenchmarkWriterTuning(b *testing.B) {
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("BENCHROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for range rounds {
		for _, conns := range []int{1, 2, 4, 8} {
			for _, batch := range []int{250, 1000, 1999} {
				name := fmt.Sprintf("conns=%d/batch=%d", conns, batch)
				b.Run(name, func(b *testing.B) {
					runLoader(b, loader{name: name, load: func(tb testing.TB) (time.Duration, float64) {
						return loadWriter(tb, engine.BatchWriterOptions{ConnsPerNode: conns, BatchSize: batch})
					}})
				})
			}
		}
	}
}

// doMultiSets sends one SET of value per key through valkey-go DoMulti
// and returns the first error reply.
func doMultiSets(ctx context.Context, c valkey.Client, keys []string, value string) error {
	cmds := make(valkey.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = c.B().Set().Key(k).Value(value).Build()
	}
	for _, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}
