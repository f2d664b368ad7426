package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// BenchmarkLoadVsPipe loads 1,000,000 SETs of 64-byte values (keys
// key:000000000000 ..) from one RESP file, by `vactor load` and by
// `redis-cli --pipe`, each in a process of its own, into the same
// throwaway server (emptied before each load), alternating, LOADROUNDS
// rounds (default 3). It prints each run and the medians:
//
//	go test -run '^$' -bench LoadVsPipe -benchtime 1x
//
// redis-cli must be on PATH (Debian: redis-tools).
func BenchmarkLoadVsPipe(b *testing.B) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		b.Fatal("redis-cli not on PATH: ", err)
	}
	rounds := 3
	if s := os.Getenv("LOADROUNDS"); s != "" {
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			b.Fatalf("LOADROUNDS=%q", s)
		}
	}
	const n = 1_000_000
	file := filepath.Join(b.TempDir(), "set1m.resp")
	if err := writeSetFile(file, n, 64); err != nil {
		b.Fatal(err)
	}
	srv, err := valkeytest.StartServer(valkeytest.Options{Name: "loadbench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	ctx := context.Background()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	reset := func() {
		if _, err := eng.Do(ctx, "FLUSHALL", "ASYNC").Await(ctx); err != nil {
			b.Fatal(err)
		}
	}
	check := func(who string) {
		r, err := eng.Do(ctx, "DBSIZE").Await(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if size, _ := r.Int64(); size != n {
			b.Fatalf("%s: DBSIZE %d after the load, want %d", who, size, n)
		}
	}
	loaders := []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"vactor load", func() *exec.Cmd {
			c := exec.Command(os.Args[0], "load", "-quiet", "-addr", srv.Addr(), file)
			c.Env = append(os.Environ(), cliEnv+"=1")
			return c
		}},
		{"redis-cli --pipe", func() *exec.Cmd {
			c := exec.Command(cli, "-h", srv.Host(), "-p", strconv.Itoa(srv.Port()), "--pipe")
			f, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = f.Close() })
			c.Stdin = f
			return c
		}},
	}
	results := map[string][]float64{}
	for i := 0; i < b.N; i++ {
		for r := range rounds {
			for _, l := range loaders {
				reset()
				c := l.cmd()
				start := time.Now()
				out, err := c.CombinedOutput()
				elapsed := time.Since(start)
				if err != nil {
					b.Fatalf("%s: %v\n%s", l.name, err, out)
				}
				check(l.name)
				rate := n / elapsed.Seconds()
				results[l.name] = append(results[l.name], rate)
				fmt.Printf("round %d  %-17s %6.3fs  %9.0f SET/s\n", r+1, l.name, elapsed.Seconds(), rate)
			}
		}
	}
	v, p := median(results["vactor load"]), median(results["redis-cli --pipe"])
	fmt.Printf("median over %d rounds: vactor load %.0f SET/s, redis-cli --pipe %.0f SET/s: %.2fx\n",
		len(results["vactor load"]), v, p, v/p)
	b.ReportMetric(v, "vactor-SET/s")
	b.ReportMetric(p, "pipe-SET/s")
	b.ReportMetric(0, "ns/op")
}

// writeSetFile writes n SET commands in RESP, keys key:%012d, values of
// size bytes.
func writeSetFile(path string, n, size int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	value := strings.Repeat("v", size)
	for i := range n {
		k := fmt.Sprintf("key:%012d", i)
		fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(value), value)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
