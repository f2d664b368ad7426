package main

import (
	"math"
	"math/bits"
	"time"
)

// A histogram counts durations in log-linear buckets, as HDR histograms
// do: values below 2^subBits ns have a bucket each, and every power of two
// above is cut into 2^subBits equal buckets, so a bucket is at most 1/64
// (1.6%) of its values wide. Values above maxTracked go to the last
// bucket. The zero value is empty and ready; it is not safe for
// concurrent use (each bench goroutine records into its own).
type histogram struct {
	counts [histBuckets]uint32
}

const (
	subBits     = 6
	subBuckets  = 1 << subBits
	maxShift    = 30 // largest tracked value: 2^(30+subBits+1)-1 ns, about 137 s
	histBuckets = (maxShift + 2) * subBuckets
)

// bucketOf returns the bucket index of v nanoseconds.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	if shift > maxShift {
		return histBuckets - 1
	}
	return (shift+1)*subBuckets + int(v>>uint(shift)) - subBuckets
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subBuckets {
		return uint64(i), uint64(i)
	}
	shift := uint(i/subBuckets - 1)
	top := uint64(i%subBuckets + subBuckets)
	return top << shift, (top+1)<<shift - 1
}

// record counts one duration.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
}

// latencies is a merged histogram in a form that travels as JSON: the
// non-empty buckets, by index, with their counts.
type latencies struct {
	Buckets []int    `json:"buckets"`
	Counts  []uint64 `json:"counts"`
}

// merge adds the counts of hs into a latencies.
func merge(hs []*histogram) latencies {
	var sum [histBuckets]uint64
	for _, h := range hs {
		for i, c := range h.counts {
			sum[i] += uint64(c)
		}
	}
	var l latencies
	for i, c := range sum {
		if c > 0 {
			l.Buckets = append(l.Buckets, i)
			l.Counts = append(l.Counts, c)
		}
	}
	return l
}

// add adds the counts of o to l (both sorted by bucket).
func (l latencies) add(o latencies) latencies {
	var r latencies
	i, j := 0, 0
	for i < len(l.Buckets) || j < len(o.Buckets) {
		switch {
		case j == len(o.Buckets) || (i < len(l.Buckets) && l.Buckets[i] < o.Buckets[j]):
			r.Buckets, r.Counts = append(r.Buckets, l.Buckets[i]), append(r.Counts, l.Counts[i])
			i++
		case i == len(l.Buckets) || o.Buckets[j] < l.Buckets[i]:
			r.Buckets, r.Counts = append(r.Buckets, o.Buckets[j]), append(r.Counts, o.Counts[j])
			j++
		default:
			r.Buckets, r.Counts = append(r.Buckets, l.Buckets[i]), append(r.Counts, l.Counts[i]+o.Counts[j])
			i++
			j++
		}
	}
	return r
}

// total returns the number of recorded values.
func (l latencies) total() uint64 {
	var n uint64
	for _, c := range l.Counts {
		n += c
	}
	return n
}

// quantile returns the value at quantile q (0 to 1): the middle of the
// bucket holding the value of that rank. It returns 0 for no values.
func (l latencies) quantile(q float64) time.Duration {
	n := l.total()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range l.Counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(l.Buckets[i])
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	lo, hi := bucketRange(l.Buckets[len(l.Buckets)-1])
	return time.Duration(lo + (hi-lo)/2)
}

// valid reports whether l is well formed (as decoded from a worker).
func (l latencies) valid() bool {
	if len(l.Buckets) != len(l.Counts) {
		return false
	}
	for i, b := range l.Buckets {
		if b < 0 || b >= histBuckets || (i > 0 && b <= l.Buckets[i-1]) {
			return false
		}
	}
	return true
}
