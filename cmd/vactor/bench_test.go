package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// benchArgs are short runs: the tests check the mechanics, not speed.
func benchArgs(addr string, extra ...string) []string {
	return append([]string{"bench", "-addr", addr, "-duration", "300ms", "-warmup", "100ms", "-keys", "500"}, extra...)
}

// readReport decodes a -json report.
func readReport(t *testing.T, path string) report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return rep
}

// checkSane checks the numbers of one contender in one case.
func checkSane(t *testing.T, c *caseReport, cc *contenderCase, rounds int) {
	t.Helper()
	checkSaneIn(t, c, cc, rounds, false)
}

// checkSaneIn is checkSane; in a cluster the server's CPU is not
// measured.
func checkSaneIn(t *testing.T, c *caseReport, cc *contenderCase, rounds int, cluster bool) {
	t.Helper()
	where := cc.Contender + " " + c.Op + " c=" + itoa(c.Concurrency)
	if len(cc.Runs) != rounds || len(cc.Failures) > 0 || cc.Errors != 0 {
		t.Fatalf("%s: %d runs (want %d), failures %q, %d errors", where, len(cc.Runs), rounds, cc.Failures, cc.Errors)
	}
	for _, r := range cc.Runs {
		if r.Ops == 0 || r.Latency.total() != r.Ops || r.Elapsed < 0.25 || r.Elapsed > 5 {
			t.Fatalf("%s: run of %d ops, %d latencies, %.2fs", where, r.Ops, r.Latency.total(), r.Elapsed)
		}
		if r.CPU <= 0 || r.Mallocs == 0 || r.GoMaxProcs < 1 {
			t.Fatalf("%s: cpu %.4fs, mallocs %d, GOMAXPROCS %d", where, r.CPU, r.Mallocs, r.GoMaxProcs)
		}
	}
	switch {
	case cc.OpsPerSec <= 0 || cc.OpsPerSec > 1e8:
		t.Fatalf("%s: %.0f ops/s", where, cc.OpsPerSec)
	case !(cc.P50us > 0 && cc.P50us <= cc.P99us && cc.P99us <= cc.P999us && cc.P999us < 5e6):
		t.Fatalf("%s: p50 %.1f p99 %.1f p99.9 %.1f µs", where, cc.P50us, cc.P99us, cc.P999us)
	case cc.CPUusPerOp <= 0 || cc.AllocsPerOp < 0 || cc.AllocsPerOp > 1000:
		t.Fatalf("%s: %.2f µs CPU/op, %.2f allocs/op", where, cc.CPUusPerOp, cc.AllocsPerOp)
	case cluster && cc.ServerUsPerOp != -1:
		t.Fatalf("%s: %.2f server µs/op in a cluster", where, cc.ServerUsPerOp)
	case !cluster && (cc.ServerUsPerOp <= 0 || cc.ServerUsPerOp > 1e5):
		t.Fatalf("%s: %.2f server µs/op", where, cc.ServerUsPerOp)
	case cc.RatioToBestPeer <= 0:
		t.Fatalf("%s: ratio %.2f", where, cc.RatioToBestPeer)
	}
}

func TestBench(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	r := vactor(t, nil, "", benchArgs(srv.Addr(), "-concurrency", "1,8", "-contenders", "vactor,valkey-go",
		"-op", "get,set", "-json", jsonPath, "-html", htmlPath)...)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The table: every case, both contenders, the ratio column.
	mustContain(t, "table", r.stdout, "GET, 1 goroutine(s)", "GET, 8 goroutine(s)", "SET, 1 goroutine(s)", "SET, 8 goroutine(s)",
		"ops/s", "p99.9 µs", "allocs/op", "CPU µs/op", "srv µs/op", "÷ best peer", "redis 7")
	if n := strings.Count(r.stdout, "  vactor "); n != 4 {
		t.Fatalf("table has %d vactor rows, want 4:\n%s", n, r.stdout)
	}
	if n := strings.Count(r.stdout, "  valkey-go "); n != 4 {
		t.Fatalf("table has %d valkey-go rows, want 4:\n%s", n, r.stdout)
	}
	// Progress: one final line per run (stderr is not a terminal here).
	if n := strings.Count(r.stderr, "round 1/1  run "); n != 8 {
		t.Fatalf("%d progress lines, want 8:\n%s", n, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "writing 500 keys", "deleted the keys vactor:bench:0 .. vactor:bench:499")

	rep := readReport(t, jsonPath)
	if len(rep.Cases) != 4 {
		t.Fatalf("%d cases, want 4", len(rep.Cases))
	}
	for _, c := range rep.Cases {
		if len(c.Results) != 2 {
			t.Fatalf("%s c=%d: %d results", c.Op, c.Concurrency, len(c.Results))
		}
		for _, cc := range c.Results {
			checkSane(t, c, cc, 1)
			if cc.Contender == "valkey-go" && cc.RatioToBestPeer != 1 {
				t.Fatalf("the only peer has ratio %.2f", cc.RatioToBestPeer)
			}
		}
	}
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "html", string(html), "echarts", "GET: throughput by concurrency", "SET, 8 goroutine(s): latency distribution", "÷ best peer")

	// Only the bench's keys were written, and they are gone.
	if n := do(t, connect(t, false, srv.Addr()), "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v after the bench", n)
	}
}

// Every contender runs, in mixed mode, over two rounds; -json - writes
// the report on stdout and the table on stderr.
func TestBenchAllContendersMixed(t *testing.T) {
	srv := valkeytest.Start(t)
	r := vactor(t, nil, "", benchArgs(srv.Addr(), "-concurrency", "4", "-op", "mixed", "-ratio", "0.5", "-rounds", "2", "-json", "-")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "table", r.stderr, "mixed 50% GET / 50% SET, 4 goroutine(s)", "median of 2 round(s)")
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(rep.Cases) != 1 || len(rep.Cases[0].Results) != len(contenders) {
		t.Fatalf("cases %d, results %d", len(rep.Cases), len(rep.Cases[0].Results))
	}
	best := 0.0
	for _, cc := range rep.Cases[0].Results {
		checkSane(t, rep.Cases[0], cc, 2)
		if cc.Peer {
			best = max(best, cc.RatioToBestPeer)
		}
	}
	if best != 1 {
		t.Fatalf("the best peer has ratio %.3f, want 1", best)
	}
	// The rounds ran in a different order: round 2 starts with the
	// second contender.
	i1 := strings.Index(r.stderr, "round 2/2  run 1/6  MIXED c=4     "+contenders[1].name+" ")
	if i1 < 0 {
		t.Fatalf("round 2 does not start with %s:\n%s", contenders[1].name, r.stderr)
	}
}

// A server that holds data is refused unless -keyspace-prefix is given;
// then the user's data is left alone, and a prefix whose keys exist is
// refused too.
func TestBenchKeyspace(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	do(t, eng, "SET", "user:1", "precious")
	do(t, eng, "SET", "vactor:bench:7", "also precious")

	r := vactor(t, nil, "", benchArgs(srv.Addr(), "-concurrency", "1", "-contenders", "vactor")...)
	if r.code != exitRefused {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitRefused, r.stdout, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "the server holds data (2 keys)", "-keyspace-prefix")

	r = vactor(t, nil, "", benchArgs(srv.Addr(), "-concurrency", "1", "-contenders", "vactor", "-keyspace-prefix", "vactor:bench:")...)
	if r.code != exitRefused {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitRefused, r.stdout, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "1 of the keys vactor:bench:0 .. vactor:bench:499 exist")

	r = vactor(t, nil, "", benchArgs(srv.Addr(), "-concurrency", "1", "-contenders", "vactor", "-op", "set", "-keyspace-prefix", "mine:")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := do(t, eng, "DBSIZE"); n != int64(2) {
		t.Fatalf("DBSIZE %v after the bench, want the user's 2 keys", n)
	}
	if v := do(t, eng, "GET", "user:1"); v != "precious" {
		t.Fatalf("user:1 = %v", v)
	}
}

// An interrupted bench stops its worker, deletes its keys and exits 130.
func TestBenchInterrupted(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	cmd := exec.Command(os.Args[0], benchArgs(srv.Addr(), "-duration", "5m", "-concurrency", "2", "-contenders", "vactor", "-op", "get")...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for the worker's GETs (it starts once the keys are written;
	// nothing before it sends a GET): the interrupt then finds it running.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(do(t, eng, "INFO", "commandstats").(string), "cmdstat_get:") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("the bench's worker sent no GET:\n%s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the bench did not end after SIGINT:\n%s", errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitInterrupted, out.String(), errb.String())
	}
	mustContain(t, "stderr", errb.String(), "interrupted", "deleted the keys vactor:bench:0 .. vactor:bench:499")
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v after the interrupted bench", n)
	}
}

// Every contender runs against a cluster; the keys are spread over the
// primaries and deleted afterwards.
func TestBenchCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	r := vactor(t, nil, "", "bench", "-cluster", "-addr", c.Addrs()[0], "-duration", "300ms", "-warmup", "100ms",
		"-keys", "300", "-concurrency", "4", "-op", "get", "-json", "-")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	mustContain(t, "report", rep.Target, "(cluster)")
	for _, cc := range rep.Cases[0].Results {
		checkSaneIn(t, rep.Cases[0], cc, 1, true)
	}
	for _, p := range c.Primaries() {
		if n, err := p.Do("DBSIZE"); err != nil || n != int64(0) {
			t.Fatalf("%s: DBSIZE %v, %v after the bench", p.Addr(), n, err)
		}
	}
}

// A run during which the server stalled fails, named so, rather than
// showing as a slow run with exit 0: the operations stuck across the end
// of its window are in no figure (qa-AM F5: a server paused 20 s read as
// 26,670 ops/s). Without a warmup, the window starts with the first
// GETs (the worker reads the server's CPU before it), so the pause,
// once the server ran 300 of them, starts inside the 1 s window and
// ends 1.5 s or more after it.
func TestBenchServerStallFails(t *testing.T) {
	srv := valkeytest.Start(t)
	paused := make(chan error, 1)
	go func() {
		for {
			n, err := srv.Do("INFO", "commandstats")
			if err != nil {
				paused <- err
				return
			}
			if s, _ := n.(string); getCalls(s) > 300 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := srv.Pause(); err != nil {
			paused <- err
			return
		}
		time.Sleep(2500 * time.Millisecond) // the stall: what the test is about
		paused <- srv.Resume()
	}()
	r := vactor(t, nil, "", "bench", "-addr", srv.Addr(), "-duration", "1s", "-warmup", "0s", "-keys", "100",
		"-concurrency", "4", "-op", "get", "-contenders", "vactor")
	if err := <-paused; err != nil {
		t.Fatal(err)
	}
	if r.code != exitFailed || !strings.Contains(r.stdout+r.stderr, "later (the server stalled?)") {
		t.Fatalf("exit %d: want exit %d and the stall named\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "÷ best peer: none ran") {
		t.Errorf("footer without peers:\n%s", r.stdout)
	}
}

// getCalls reads the GETs the server ran from INFO commandstats.
func getCalls(info string) int {
	_, rest, _ := strings.Cut(info, "cmdstat_get:calls=")
	n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
	return n
}
