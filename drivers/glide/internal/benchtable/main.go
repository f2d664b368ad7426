// Command benchtable summarises the glide benchmarks' output (several
// rounds of BenchmarkGet and BenchmarkSet, as `make bench-glide` runs
// them): the median ops/s of each contender at each level, the errors
// summed over the rounds, and the ratios of the engine over glide to raw
// glide and to the engine over valkey-go.
//
//	go run ./internal/benchtable bench-glide.out
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
)

// line matches "BenchmarkGet/g=256/engine-glide-2  N  E errors  X ops/s ...".
var line = regexp.MustCompile(`^Benchmark(Get|Set)/g=(\d+)/(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) errors\s+([\d.]+) ops/s`)

type key struct {
	op, contender string
	g             int
}

type sample struct {
	ops    []float64
	errors float64
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtable FILE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	if err := table(f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func table(r io.Reader, w io.Writer) error {
	data := map[key]*sample{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		g, _ := strconv.Atoi(m[2])
		errs, _ := strconv.ParseFloat(m[4], 64)
		ops, _ := strconv.ParseFloat(m[5], 64)
		k := key{m[1], m[3], g}
		if data[k] == nil {
			data[k] = &sample{}
		}
		data[k].ops = append(data[k].ops, ops)
		data[k].errors += errs
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(data) == 0 {
		return fmt.Errorf("no benchmark lines")
	}
	fmt.Fprintf(w, "%-4s %5s %14s %14s %14s %8s %10s %12s\n", "op", "g", "engine-glide", "engine-vkgo", "glide", "rounds", "÷ glide", "÷ engine-vkgo")
	for _, op := range []string{"Get", "Set"} {
		for _, g := range []int{16, 256, 2048} {
			eg, ev, gl := data[key{op, "engine-glide", g}], data[key{op, "engine-valkeygo", g}], data[key{op, "glide", g}]
			if eg == nil || ev == nil || gl == nil {
				continue
			}
			fmt.Fprintf(w, "%-4s %5d %14s %14s %14s %8d %9.2fx %11.2fx\n", op, g,
				cell(eg), cell(ev), cell(gl), len(eg.ops), median(eg.ops)/median(gl.ops), median(eg.ops)/median(ev.ops))
		}
	}
	return nil
}

// cell formats a contender's median ops/s, with its errors if any.
func cell(s *sample) string {
	c := fmt.Sprintf("%.0f", median(s.ops))
	if s.errors > 0 {
		c += fmt.Sprintf(" (%.0f err)", s.errors)
	}
	return c
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
