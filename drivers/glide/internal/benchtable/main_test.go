package main

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := `BenchmarkGet/g=256/engine-glide-2   	  200000	         0 errors	    200000 ops/s	     765 B/op	      10 allocs/op
BenchmarkGet/g=256/engine-valkeygo-2   	  200000	         0 errors	    400000 ops/s	     765 B/op	      10 allocs/op
BenchmarkGet/g=256/glide-2   	  200000	         3 errors	    50000 ops/s	     765 B/op	      10 allocs/op
BenchmarkGet/g=256/glide-2   	  200000	         2 errors	    70000 ops/s	     765 B/op	      10 allocs/op
`
	var out strings.Builder
	if err := table(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"60000 (5 err)", "3.33x", "0.50x"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if err := table(strings.NewReader("nothing"), &out); err == nil {
		t.Error("no error for input without benchmark lines")
	}
}
