// Package bench holds the benchmarks that compare vactor's engine with
// plain valkey-go in the same process, against the same server, interleaved
// (engine, valkey-go defaults, valkey-go with MaxFlushDelay 20µs, for each
// concurrency level in turn). Run them with `make bench`, which also prints
// the ratios (internal/tools/benchratio).
//
// Each benchmark reports ops/s, p50 and p99 latency in microseconds and,
// with -benchmem, allocations per operation.
package bench
