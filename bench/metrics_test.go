package bench

import (
	"math"
	"runtime/metrics"
	"testing"
)

// runtimeSample is a snapshot of the runtime metrics the benchmarks
// report: GC CPU time, total CPU time, GC cycles, and the scheduler
// latency histogram (how long goroutines waited runnable before they ran).
type runtimeSample struct {
	gcCPU, totalCPU float64
	cycles          uint64
	buckets         []float64
	counts          []uint64
}

var runtimeMetricNames = []string{
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/gc/cycles/total:gc-cycles",
	"/sched/latencies:seconds",
}

func readRuntime() runtimeSample {
	s := make([]metrics.Sample, len(runtimeMetricNames))
	for i, n := range runtimeMetricNames {
		s[i].Name = n
	}
	metrics.Read(s)
	var r runtimeSample
	if s[0].Value.Kind() == metrics.KindFloat64 {
		r.gcCPU = s[0].Value.Float64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		r.totalCPU = s[1].Value.Float64()
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		r.cycles = s[2].Value.Uint64()
	}
	if s[3].Value.Kind() == metrics.KindFloat64Histogram {
		h := s[3].Value.Float64Histogram()
		r.buckets = h.Buckets
		r.counts = append([]uint64(nil), h.Counts...) // Read reuses them
	}
	return r
}

// reportRuntime reports, between before and after, for n operations: the
// share of the process's CPU time the runtime attributes to GC (gc-%; the
// runtime's estimate, refreshed at GC cycles), GC cycles per 100,000
// operations, and the scheduler latency's median and 99th percentile
// (sched-p50-µs, sched-p99-µs: how long a goroutine made runnable, e.g.
// woken by a completed future, waited for a CPU; bucket upper bounds).
func reportRuntime(b *testing.B, before, after runtimeSample, n int) {
	if total := after.totalCPU - before.totalCPU; total > 0 {
		b.ReportMetric(100*(after.gcCPU-before.gcCPU)/total, "gc-%")
	}
	if n > 0 {
		b.ReportMetric(float64(after.cycles-before.cycles)*1e5/float64(n), "gcs/100k")
	}
	if len(before.counts) != len(after.counts) || len(after.counts) == 0 {
		return
	}
	d := make([]uint64, len(after.counts))
	var sum uint64
	for i := range d {
		d[i] = after.counts[i] - before.counts[i]
		sum += d[i]
	}
	if sum == 0 {
		return
	}
	q := func(p float64) float64 {
		want := uint64(p * float64(sum))
		var acc uint64
		for i, c := range d {
			acc += c
			if acc > want {
				if ub := after.buckets[i+1]; !math.IsInf(ub, 1) {
					return ub
				}
				return after.buckets[i]
			}
		}
		return after.buckets[len(after.buckets)-2]
	}
	b.ReportMetric(q(0.5)*1e6, "sched-p50-µs")
	b.ReportMetric(q(0.99)*1e6, "sched-p99-µs")
}
