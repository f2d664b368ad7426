package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
BenchmarkGet/g=256/engine-2         	  920550	    900000 ops/s	       263.9 p50-µs	       874.7 p99-µs	     250 B/op	       2 allocs/op
BenchmarkGet/g=256/valkeygo-2       	  344378	    300000 ops/s	       799.0 p50-µs	      2342 p99-µs	      29 B/op	       1 allocs/op
BenchmarkGet/g=256/valkeygo-fd20-2  	  619392	    600000 ops/s	       441.7 p50-µs	       914.8 p99-µs	      29 B/op	       1 allocs/op
BenchmarkGet/g=256/engine-2         	  920550	    800000 ops/s	       263.9 p50-µs	       874.7 p99-µs	     250 B/op	       2 allocs/op
BenchmarkGet/g=256/engine-2         	  920550	    700000 ops/s	       263.9 p50-µs	       874.7 p99-µs	     250 B/op	       2 allocs/op
PASS
`

func TestRatios(t *testing.T) {
	lines := ratios(t, sampleOutput)
	if len(lines) != 2 {
		t.Fatalf("want header + 1 row, got:\n%s", strings.Join(lines, "\n"))
	}
	// Median engine 800000 over 600000 and 300000.
	row := strings.Fields(lines[1])
	if row[0] != "Get" || row[1] != "256" || row[3] != "800000" || row[7] != "1.33" || row[8] != "2.67" {
		t.Fatalf("unexpected row %q", lines[1])
	}
}

// BenchmarkTLSGet's lines (make bench) get a row of their own.
func TestRatiosTLS(t *testing.T) {
	const out = `BenchmarkGet/g=256/engine-2         	  920550	    900000 ops/s	       263.9 p50-µs	       874.7 p99-µs	     250 B/op	       2 allocs/op
BenchmarkGet/g=256/valkeygo-2       	  344378	    300000 ops/s	       799.0 p50-µs	      2342 p99-µs	      29 B/op	       1 allocs/op
BenchmarkTLSGet/g=256/engine-2         	  614517	    300000 ops/s	       638.2 p50-µs	      5089 p99-µs	     233 B/op	       2 allocs/op
BenchmarkTLSGet/g=256/valkeygo-2       	   68982	     30000 ops/s	      8336 p50-µs	    120915 p99-µs	      36 B/op	       1 allocs/op
BenchmarkTLSGet/g=256/valkeygo-fd20-2  	  191240	    150000 ops/s	      2225 p50-µs	     26763 p99-µs	      30 B/op	       1 allocs/op
`
	lines := ratios(t, out)
	if len(lines) != 3 {
		t.Fatalf("want header + 2 rows, got:\n%s", strings.Join(lines, "\n"))
	}
	row := strings.Fields(lines[2])
	if row[0] != "TLSGet" || row[1] != "256" || row[3] != "300000" || row[7] != "2.00" || row[8] != "10.00" {
		t.Fatalf("unexpected row %q", lines[2])
	}
}

// ratios runs the command on output and returns its lines.
func ratios(t *testing.T, output string) []string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "bench.out")
	if err := os.WriteFile(in, []byte(output), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	os.Args = []string{"benchratio", in}
	main()
	os.Stdout = stdout
	f.Close()
	got, _ := os.ReadFile(out)
	return strings.Split(strings.TrimSpace(string(got)), "\n")
}
