package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/config"
)

// workerCommand is the hidden subcommand vactor bench runs, one process
// per contender and case: it drives the load and prints one runResult as
// JSON on stdout. Progress goes to stderr as lines that start with
// progressPrefix.
const workerCommand = "__bench-worker"

const progressPrefix = "@progress "

// Operations.
const (
	opGet   = "get"
	opSet   = "set"
	opMixed = "mixed"
)

// runSettings is one run: what the worker does, and for how long.
type runSettings struct {
	Contender   string        `json:"contender"`
	Op          string        `json:"op"`
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"duration_ns"`
	Warmup      time.Duration `json:"warmup_ns"`
	Keys        int           `json:"keys"`
	ValueSize   int           `json:"value_size"`
	Prefix      string        `json:"prefix"`
	Ratio       float64       `json:"get_ratio"` // mixed: the share of GETs
}

// args renders s as the worker's flags.
func (s runSettings) args() []string {
	return []string{
		"-contender", s.Contender, "-op", s.Op, "-concurrency", strconv.Itoa(s.Concurrency),
		"-duration", s.Duration.String(), "-warmup", s.Warmup.String(),
		"-keys", strconv.Itoa(s.Keys), "-value-size", strconv.Itoa(s.ValueSize),
		"-prefix", s.Prefix, "-ratio", strconv.FormatFloat(s.Ratio, 'g', -1, 64),
	}
}

// runResult is what a worker measured over its run (warm-up excluded).
type runResult struct {
	Contender   string    `json:"contender"`
	Op          string    `json:"op"`
	Concurrency int       `json:"concurrency"`
	Ops         uint64    `json:"ops"`
	Errors      uint64    `json:"errors"`
	FirstError  string    `json:"first_error,omitempty"`
	Elapsed     float64   `json:"elapsed_s"`
	OpsPerSec   float64   `json:"ops_per_sec"`
	Latency     latencies `json:"latency_ns"`
	// Mallocs and AllocBytes are runtime.MemStats deltas; CPU is the
	// process's user+system time (getrusage), all over the measured
	// window.
	Mallocs    uint64  `json:"mallocs"`
	AllocBytes uint64  `json:"alloc_bytes"`
	CPU        float64 `json:"cpu_s"`
	GCs        uint32  `json:"gcs"`
	GoMaxProcs int     `json:"gomaxprocs"`
	// ServerCPU is the server's user+system time over the window (INFO
	// cpu, read by the worker on a connection of its own just before and
	// after it), or -1 when not measured (cluster mode, or INFO failed).
	ServerCPU float64 `json:"server_cpu_s"`
	// Drain is the time from the end of the window until every
	// operation in flight then had returned (those are in no figure):
	// about one operation's latency, unless the server stalled.
	Drain float64 `json:"drain_s"`
}

// runWorker implements the hidden worker subcommand.
func runWorker(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(workerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s runSettings
	fs.StringVar(&s.Contender, "contender", "", "")
	fs.StringVar(&s.Op, "op", opGet, "")
	fs.IntVar(&s.Concurrency, "concurrency", 1, "")
	fs.DurationVar(&s.Duration, "duration", time.Second, "")
	fs.DurationVar(&s.Warmup, "warmup", 0, "")
	fs.IntVar(&s.Keys, "keys", 1000, "")
	fs.IntVar(&s.ValueSize, "value-size", 64, "")
	fs.StringVar(&s.Prefix, "prefix", "", "")
	fs.Float64Var(&s.Ratio, "ratio", 0.8, "")
	every := fs.Duration("progress", 250*time.Millisecond, "")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c, ok := findContender(s.Contender)
	if !ok || s.Concurrency < 1 || s.Keys < 1 || s.Duration <= 0 {
		fmt.Fprintf(stderr, "worker: bad settings %+v\n", s)
		return exitUsage
	}
	// The parent resolved the flags into the environment: this is the
	// same configuration.
	cfg, err := config.LoadFromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return exitFailed
	}
	ctx := context.Background()
	openCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+5*time.Second)
	// direct is the server itself: in sentinel mode, the primary the
	// sentinels name now, as the engine finds it. The peers know
	// nothing of sentinels (left to themselves they would dial the
	// default localhost:6379), and the server's CPU is read on a
	// connection of its own.
	direct := cfg
	if cfg.SentinelMode {
		if direct, err = primaryConfig(openCtx, cfg); err != nil {
			cancel()
			fmt.Fprintf(stderr, "worker: %s: find the primary through the sentinels: %v\n", s.Contender, err)
			return exitFailed
		}
	}
	ocfg := cfg
	if c.peer {
		ocfg = direct
	}
	cl, err := c.open(openCtx, ocfg)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "worker: %s: %v\n", s.Contender, err)
		return exitFailed
	}
	srv := newServerCPU(ctx, direct)
	defer srv.close()
	res := drive(ctx, cl, s, srv.read, *every, func(ops uint64, elapsed time.Duration) {
		fmt.Fprintf(stderr, "%s%d %d\n", progressPrefix, ops, elapsed.Nanoseconds())
	})
	cl.close()
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return exitFailed
	}
	return exitOK
}

// primaryConfig returns cfg pointed at the primary the sentinels of cfg
// name (sentinel mode off): the engine finds it, as it does for the
// vactor contenders.
func primaryConfig(ctx context.Context, cfg config.Config) (config.Config, error) {
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return cfg, err
	}
	p := eng.Stats().Sentinel.Primary
	_ = eng.Close()
	if p == "" {
		return cfg, errors.New("the sentinels name no primary")
	}
	return cfg.WithSentinelMode(false).WithAddrs(p), nil
}

// keyNames returns the bench's key names: prefix followed by 0 .. n-1.
func keyNames(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// benchValue returns the value SET writes: size bytes.
func benchValue(size int) string { return strings.Repeat("v", size) }

// gState is one bench goroutine's own counters.
type gState struct {
	hist     histogram
	ops      atomic.Uint64 // measured operations, read by progress
	errs     uint64
	firstErr error
}

// Phases of a run.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseStop
)

// maxConsecutiveErrors stops a goroutine that only gets errors (the
// server went away): its run is reported with the errors.
const maxConsecutiveErrors = 100

// drive runs the closed loop: s.Concurrency goroutines each issue one
// operation at a time on a random key until the run ends. Operations
// that complete during the measured window (after s.Warmup, for
// s.Duration) are counted, with their latency. progress is called every
// `every` during the window with the operations so far.
// serverCPU, when not nil, returns the server's CPU time so far (false
// when it cannot tell).
func drive(ctx context.Context, cl client, s runSettings, serverCPU func() (time.Duration, bool), every time.Duration, progress func(uint64, time.Duration)) runResult {
	keys := keyNames(s.Prefix, s.Keys)
	value := benchValue(s.ValueSize)
	var phase atomic.Int32
	states := make([]*gState, s.Concurrency)
	var wg sync.WaitGroup
	for g := range states {
		st := new(gState)
		states[g] = st
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0x9e3779b97f4a7c15))
			bad := 0
			for {
				k := keys[rng.IntN(len(keys))]
				get := s.Op == opGet || (s.Op == opMixed && rng.Float64() < s.Ratio)
				t0 := time.Now()
				var err error
				if get {
					err = cl.get(ctx, k)
				} else {
					err = cl.set(ctx, k, value)
				}
				d := time.Since(t0)
				ph := phase.Load()
				if ph == phaseStop {
					return
				}
				if err != nil {
					if ph == phaseMeasure {
						st.errs++
						if st.firstErr == nil {
							st.firstErr = err
						}
					}
					if bad++; bad >= maxConsecutiveErrors {
						if st.firstErr == nil {
							st.firstErr = err
						}
						st.errs++
						return
					}
					continue
				}
				bad = 0
				if ph == phaseMeasure {
					st.hist.record(d)
					st.ops.Add(1)
				}
			}
		})
	}
	time.Sleep(s.Warmup)

	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	srv0, srvOK0 := serverCPU()
	cpu0 := cpuTime()
	start := time.Now()
	phase.Store(phaseMeasure)
	end := start.Add(s.Duration)
	tick := time.NewTicker(every)
	for now := time.Now(); now.Before(end); now = time.Now() {
		select {
		case <-tick.C:
			var ops uint64
			for _, st := range states {
				ops += st.ops.Load()
			}
			progress(ops, time.Since(start))
		case <-time.After(end.Sub(now)):
		}
	}
	tick.Stop()
	phase.Store(phaseStop)
	elapsed := time.Since(start)
	cpu1 := cpuTime()
	srv1, srvOK1 := serverCPU()
	runtime.ReadMemStats(&ms1)
	wg.Wait()
	drain := time.Since(start.Add(elapsed))

	res := runResult{
		Contender: s.Contender, Op: s.Op, Concurrency: s.Concurrency,
		Elapsed:    elapsed.Seconds(),
		Mallocs:    ms1.Mallocs - ms0.Mallocs,
		AllocBytes: ms1.TotalAlloc - ms0.TotalAlloc,
		CPU:        (cpu1 - cpu0).Seconds(),
		ServerCPU:  -1,
		GCs:        ms1.NumGC - ms0.NumGC,
		GoMaxProcs: runtime.GOMAXPROCS(0),
		Drain:      drain.Seconds(),
	}
	hs := make([]*histogram, len(states))
	var errs []error
	for i, st := range states {
		hs[i] = &st.hist
		res.Ops += st.ops.Load()
		res.Errors += st.errs
		if st.firstErr != nil && len(errs) == 0 {
			errs = append(errs, st.firstErr)
		}
	}
	if len(errs) > 0 {
		res.FirstError = errors.Join(errs...).Error()
	}
	if srvOK0 && srvOK1 {
		res.ServerCPU = (srv1 - srv0).Seconds()
	}
	res.Latency = merge(hs)
	res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	progress(res.Ops, elapsed)
	return res
}

// cpuTime returns the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
