// Command benchratio reads `go test -bench` output of the bench package
// (on stdin or from the files named as arguments) and prints, for each
// benchmark and concurrency level, the engine's figures next to plain
// valkey-go's and the ratios: one row per benchmark name and level (Get,
// Set, ClusterGet, ..., TLSGet for GET over TLS). With -count > 1 it uses
// the median of each.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// line matches e.g. "BenchmarkGet/g=256/engine-2  920550  878478 ops/s  263.9 p50-µs ..."
var line = regexp.MustCompile(`^Benchmark(\w+)/g=(\d+)/([\w-]+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type key struct {
	op string
	g  int
}

type sample map[string]float64 // unit -> value

func main() {
	var in io.Reader = os.Stdin
	if len(os.Args) > 1 {
		var rs []io.Reader
		for _, p := range os.Args[1:] {
			f, err := os.Open(p)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			defer f.Close()
			rs = append(rs, f)
		}
		in = io.MultiReader(rs...)
	}
	data := map[key]map[string][]sample{}
	var order []key
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		g, _ := strconv.Atoi(m[2])
		k := key{m[1], g}
		if data[k] == nil {
			data[k] = map[string][]sample{}
			order = append(order, k)
		}
		f := strings.Fields(m[4])
		s := sample{}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				s[f[i+1]] = v
			}
		}
		data[k][m[3]] = append(data[k][m[3]], s)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchratio: no benchmark lines found")
		os.Exit(1)
	}
	fmt.Printf("%-10s %6s | %10s %10s %10s | %8s %8s | %8s %8s %8s | %8s %8s %8s | %6s %6s\n",
		"op", "gorout", "engine/s", "vg/s", "vg-fd20/s", "×fd20", "×vg", "p50 eng", "p50 vg", "p50 fd20", "p99 eng", "p99 vg", "p99 fd20", "allocE", "allocV")
	for _, k := range order {
		e, v, f := data[k]["engine"], data[k]["valkeygo"], data[k]["valkeygo-fd20"]
		opsE, opsV, opsF := median(e, "ops/s"), median(v, "ops/s"), median(f, "ops/s")
		fmt.Printf("%-10s %6d | %10.0f %10.0f %10.0f | %8.2f %8.2f | %8.1f %8.1f %8.1f | %8.1f %8.1f %8.1f | %6.1f %6.1f\n",
			k.op, k.g, opsE, opsV, opsF, ratio(opsE, opsF), ratio(opsE, opsV),
			median(e, "p50-µs"), median(v, "p50-µs"), median(f, "p50-µs"),
			median(e, "p99-µs"), median(v, "p99-µs"), median(f, "p99-µs"),
			median(e, "allocs/op"), median(v, "allocs/op"))
	}
}

func median(ss []sample, unit string) float64 {
	var vs []float64
	for _, s := range ss {
		if v, ok := s[unit]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
