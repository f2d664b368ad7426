package actors

import (
	"math"
	"slices"
	"testing"
)

// take hands the kept commands back in the order they were posted (their
// Seq), not the order they were kept in, also across the wrap of the
// slot's counter (review-35 R35-2).
func TestCollectorTakeSortsBySeq(t *testing.T) {
	var c Collector
	seqs := []uint32{math.MaxUint32, 2, 0, math.MaxUint32 - 1, 1}
	for _, s := range seqs {
		c.redirects = append(c.redirects, Redirect{seq: s})
	}
	var got []uint32
	for _, r := range c.take() {
		got = append(got, r.seq)
	}
	if want := []uint32{math.MaxUint32 - 1, math.MaxUint32, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("take order %v, want %v", got, want)
	}
}
