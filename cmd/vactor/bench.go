package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchSettings are the flags of vactor bench.
type benchSettings struct {
	ops         []string
	ratio       float64
	valueSize   int
	keys        int
	levels      []int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	contenders  []contender
	prefix      string
	prefixGiven bool
	htmlPath    string
	jsonPath    string
	htmlAssets  string
}

const benchUsage = `usage: vactor bench [flags]

Closed-loop benchmark of vactor against valkey-go and go-redis on the
configured server: for each operation and concurrency level, every
contender runs in a process of its own (vactor re-executes itself), one
after the other, for -duration after -warmup; -rounds repeats the whole
set, rotating the order, so the contenders are interleaved over time.
The table gives the median over the rounds of: ops/s, latency
percentiles of single operations, allocations and client CPU time per
operation (measured inside each client's process), and the ratio to the
best peer (the best non-vactor contender of that case).

The bench writes its own keys (PREFIX0 .. PREFIXn-1) and deletes exactly
those at the end. It refuses a server that holds data unless
-keyspace-prefix is given, and refuses a prefix whose keys exist.

Contenders: %s

Flags:
`

// runBench implements `vactor bench`.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vactor bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf targetFlags
	tf.register(fs)
	var s benchSettings
	opsFlag := fs.String("op", "get,set", "operations, comma separated: get, set, mixed")
	fs.Float64Var(&s.ratio, "ratio", 0.8, "mixed: the share of GETs (0 to 1); the rest are SETs")
	fs.IntVar(&s.valueSize, "value-size", 64, "bytes per value")
	fs.IntVar(&s.keys, "keys", 100_000, "key space: keys picked uniformly at random")
	levelsFlag := fs.String("concurrency", "1,16,256,2048", "goroutines issuing operations, comma separated levels")
	fs.DurationVar(&s.duration, "duration", 3*time.Second, "measured time of each run")
	fs.DurationVar(&s.warmup, "warmup", time.Second, "unmeasured time at the start of each run")
	fs.IntVar(&s.rounds, "rounds", 1, "rounds: each runs every contender at every case once")
	contFlag := fs.String("contenders", "all", "contenders, comma separated, or all")
	fs.StringVar(&s.prefix, "keyspace-prefix", defaultPrefix, "prefix of the bench's keys; required when the server holds data")
	fs.StringVar(&s.htmlPath, "html", "", "write an HTML report with charts to this file")
	fs.StringVar(&s.htmlAssets, "html-assets", "", "directory the HTML report loads echarts.min.js from: an http(s) URL or a path relative to the page, such as ./ (default: go-echarts' CDN)")
	fs.StringVar(&s.jsonPath, "json", "", "write the results as JSON to this file (- for stdout; the table then goes to stderr)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), benchUsage, strings.Join(contenderNames(), ", "))
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	fs.Visit(func(f *flag.Flag) { s.prefixGiven = s.prefixGiven || f.Name == "keyspace-prefix" })
	if err := s.parse(fs, *opsFlag, *levelsFlag, *contFlag); err != nil {
		fmt.Fprintln(stderr, "vactor bench:", err)
		return exitUsage
	}
	// Before the runs, not after minutes of them.
	if err := s.checkOutputs(); err != nil {
		fmt.Fprintln(stderr, "vactor bench:", err)
		return exitUsage
	}

	t, err := resolveTarget(&tf, fs, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vactor bench:", err)
		return targetExit(err)
	}
	defer closeTarget(t, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench(ctx, t, s, stderr, func(rep *report, code int) int {
		table := stdout
		if s.jsonPath == "-" {
			table = stderr
		}
		rep.printTable(table)
		if s.jsonPath != "" {
			if err := rep.writeJSON(s.jsonPath, stdout); err != nil {
				fmt.Fprintln(stderr, "vactor bench:", err)
				code = exitFailed
			}
		}
		if s.htmlPath != "" {
			if err := rep.writeHTML(s.htmlPath, s.htmlAssets); err != nil {
				fmt.Fprintln(stderr, "vactor bench:", err)
				code = exitFailed
			} else {
				fmt.Fprintln(stderr, "vactor bench: wrote", s.htmlPath)
			}
		}
		return code
	})
}

// checkOutputs checks -html-assets, and that the -json and -html files
// can be written.
func (s benchSettings) checkOutputs() error {
	if s.htmlAssets != "" {
		u, err := url.Parse(s.htmlAssets)
		if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("-html-assets %q: want an http(s) URL or a path relative to the page, such as ./ "+
				"(the page's template refuses other URLs, file:// included: the page would have no charts)", s.htmlAssets)
		}
	}
	for _, o := range []struct{ flag, path string }{{"-json", s.jsonPath}, {"-html", s.htmlPath}} {
		if o.path == "" || (o.flag == "-json" && o.path == "-") {
			continue
		}
		if err := checkWritable(o.path); err != nil {
			return fmt.Errorf("%s %s: cannot be written: %w", o.flag, o.path, err)
		}
	}
	return nil
}

// parse checks the flags and fills the list settings.
func (s *benchSettings) parse(fs *flag.FlagSet, ops, levels, conts string) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	seen := map[string]bool{}
	for op := range strings.SplitSeq(ops, ",") {
		op = strings.ToLower(strings.TrimSpace(op))
		switch op {
		case opGet, opSet, opMixed:
		default:
			return fmt.Errorf("-op: unknown operation %q (get, set or mixed)", op)
		}
		if !seen[op] {
			seen[op] = true
			s.ops = append(s.ops, op)
		}
	}
	for l := range strings.SplitSeq(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 || n > 1_000_000 {
			return fmt.Errorf("-concurrency: %q is not a level between 1 and 1000000", l)
		}
		s.levels = append(s.levels, n)
	}
	var err error
	if s.contenders, err = parseContenders(conts); err != nil {
		return fmt.Errorf("-contenders: %w", err)
	}
	switch {
	case !(s.ratio >= 0 && s.ratio <= 1):
		return errors.New("-ratio must be between 0 and 1")
	case s.valueSize < 0 || s.valueSize > 512<<20:
		return errors.New("-value-size must be between 0 and 512 MiB")
	case s.keys < 1 || s.keys > 100_000_000:
		return errors.New("-keys must be between 1 and 100,000,000")
	case s.duration <= 0:
		return errors.New("-duration must be positive")
	case s.warmup < 0:
		return errors.New("-warmup must not be negative")
	case s.rounds < 1:
		return errors.New("-rounds must be at least 1")
	case s.prefixGiven && s.prefix == "":
		return errors.New("-keyspace-prefix must not be empty")
	}
	return nil
}

// needsData reports whether some operation reads the keys.
func (s benchSettings) needsData() bool {
	for _, op := range s.ops {
		if op != opSet {
			return true
		}
	}
	return false
}

// bench runs the whole benchmark, hands its report to output (which
// prints it and returns the exit code), and returns the exit code. The
// keys it wrote are deleted whatever happens after they were claimed,
// after output: when they cannot be, the exit status is not 0 and the
// last lines say which keys are left.
func bench(ctx context.Context, t *target, s benchSettings, stderr io.Writer, output func(*report, int) int) (code int) {
	// Writing, checking and deleting the keys take time with their
	// number; an interrupt (ctx) ends them.
	setup := ctx
	dctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout+5*time.Second)
	eng, err := newEngine(dctx, t.cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "vactor bench: interrupted while connecting")
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "vactor bench:", err)
		return exitFailed
	}
	defer func() { _ = eng.Close() }()
	ks, err := claim(setup, eng, t.cfg, s.prefix, s.prefixGiven, s.keys)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "vactor bench: interrupted while checking the keys")
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "vactor bench:", err)
		if errors.Is(err, errHoldsData) {
			return exitRefused
		}
		return exitFailed
	}
	// The keys must be deletable before any is written (an ACL without
	// UNLINK would leave them all).
	if err := ks.checkDelete(setup); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "vactor bench: interrupted while checking the keys")
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "vactor bench:", err)
		return exitFailed
	}
	defer func() {
		// Not ctx: the keys are deleted after an interrupt too.
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(s.keys/20_000)*time.Second)
		defer cancel()
		if err := ks.drop(dctx); err != nil {
			ks.reportLeft(dctx, stderr, err)
			if code == exitOK {
				code = exitFailed
			}
			return
		}
		fmt.Fprintf(stderr, "vactor bench: deleted the keys %s0 .. %s%d\n", ks.prefix, ks.prefix, s.keys-1)
	}()
	if s.needsData() {
		fmt.Fprintf(stderr, "vactor bench: writing %d keys of %d bytes (%s0 .. %s%d)\n", s.keys, s.valueSize, s.prefix, s.prefix, s.keys-1)
		if err := ks.fill(setup, s.valueSize); err != nil {
			if ctx.Err() != nil {
				// The deferred drop still deletes what was written.
				fmt.Fprintln(stderr, "vactor bench: interrupted while writing the keys")
				return exitInterrupted
			}
			fmt.Fprintln(stderr, "vactor bench: fill the keys:", err)
			return exitFailed
		}
	}
	server := "unknown"
	if info, err := serverInfo(setup, eng); err == nil {
		server = serverVersion(info)
	}

	rep := newReport(t, server, s)
	line := newLiveLine(stderr)
	code = exitOK
	runs := len(s.ops) * len(s.levels) * len(s.contenders)
	for round := range s.rounds {
		order := rotate(s.contenders, round)
		n := 0
		for _, op := range s.ops {
			for _, level := range s.levels {
				for _, c := range order {
					n++
					if ctx.Err() != nil {
						fmt.Fprintln(stderr, "vactor bench: interrupted")
						rep.summarize()
						return output(rep, exitInterrupted)
					}
					rs := runSettings{
						Contender: c.name, Op: op, Concurrency: level,
						Duration: s.duration, Warmup: s.warmup,
						Keys: s.keys, ValueSize: s.valueSize, Prefix: s.prefix, Ratio: s.ratio,
					}
					label := fmt.Sprintf("round %d/%d  run %d/%d  %-5s c=%-5d %-15s", round+1, s.rounds, n, runs, strings.ToUpper(op), level, c.name)
					res, err := runWorkerProcess(ctx, rs, func(ops uint64, elapsed time.Duration) {
						line.update(fmt.Sprintf("%s %12s ops/s  %5.1fs/%s", label, groupDigits(rate(ops, elapsed)), elapsed.Seconds(), s.duration))
					}, stderr)
					if err != nil {
						if ctx.Err() != nil {
							line.finish(label + " interrupted")
							fmt.Fprintln(stderr, "vactor bench: interrupted: the table has the runs that ended")
							rep.summarize()
							return output(rep, exitInterrupted)
						}
						line.finish(fmt.Sprintf("%s failed: %v", label, err))
						rep.fail(op, level, c.name, err.Error())
						code = exitFailed
						continue
					}
					if d := time.Duration(res.Drain * float64(time.Second)); d > maxDrain {
						// The operations stuck across the window's end are
						// in no figure: the table would show a stall as a
						// slow run at best (qa-AM F5: a server paused for
						// 20 s read as 26,670 ops/s, exit 0).
						why := fmt.Sprintf("operations in flight at the end of the measured window returned %s later (the server stalled?): the run measured nothing sound", d.Round(time.Millisecond))
						line.finish(fmt.Sprintf("%s failed: %s", label, why))
						rep.fail(op, level, c.name, why)
						code = exitFailed
						continue
					}
					if res.Ops == 0 {
						// Not a result: a client that never got through
						// (it may still be dialling) measured nothing.
						why := "no operation completed in the measured window"
						if res.Errors > 0 {
							why += fmt.Sprintf(" (%d errors, first: %s)", res.Errors, res.FirstError)
						}
						line.finish(fmt.Sprintf("%s failed: %s", label, why))
						rep.fail(op, level, c.name, why)
						code = exitFailed
						continue
					}
					status := ""
					if res.Errors > 0 {
						status = fmt.Sprintf("  %d errors, first: %s", res.Errors, res.FirstError)
						code = exitFailed
					}
					p := res.Latency
					line.finish(fmt.Sprintf("%s %12s ops/s  p50 %s  p99 %s%s", label, groupDigits(res.OpsPerSec),
						micros(p.quantile(0.5)), micros(p.quantile(0.99)), status))
					rep.add(res)
				}
			}
		}
	}
	rep.summarize()
	return output(rep, code)
}

// maxDrain bounds the time the operations in flight at the end of a
// run's window may take to return: one operation's latency is well
// under it, a server stall is not.
const maxDrain = time.Second

// rotate returns cs rotated left by n, so each round starts with another
// contender.
func rotate(cs []contender, n int) []contender {
	n %= len(cs)
	return append(append([]contender(nil), cs[n:]...), cs[:n]...)
}

// rate returns ops per second.
func rate(ops uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(ops) / d.Seconds()
}

// runWorkerProcess runs one worker: this program again, with the hidden
// worker command, in the same environment (so with the same resolved
// configuration). It returns the worker's result; progress is called
// with its progress lines, and its other stderr output is passed on.
func runWorkerProcess(ctx context.Context, s runSettings, progress func(uint64, time.Duration), stderr io.Writer) (runResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return runResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{workerCommand}, s.args()...)...)
	cmd.Env = os.Environ()
	var out bytes.Buffer
	cmd.Stdout = &out
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return runResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return runResult{}, err
	}
	var msgs []string
	sc := bufio.NewScanner(errPipe)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, progressPrefix); ok {
			var ops, ns uint64
			if _, err := fmt.Sscan(rest, &ops, &ns); err == nil {
				progress(ops, time.Duration(ns))
			}
			continue
		}
		msgs = append(msgs, line)
	}
	_, _ = io.Copy(io.Discard, errPipe) // after a line too long to scan
	werr := cmd.Wait()
	if werr != nil {
		msg := strings.Join(msgs, "; ")
		if msg == "" {
			msg = werr.Error()
		}
		return runResult{}, errors.New(msg)
	}
	for _, m := range msgs {
		fmt.Fprintf(stderr, "[%s] %s\n", s.Contender, m)
	}
	var res runResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return runResult{}, fmt.Errorf("worker output: %w", err)
	}
	if !res.Latency.valid() || res.Contender != s.Contender {
		return runResult{}, errors.New("worker output: malformed result")
	}
	return res, nil
}
