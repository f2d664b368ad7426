# vactor — the two commands a fresh Debian machine with Go needs:
#   make demo   runs examples/quickstart against $VALKEY_ADDR / $VALKEY_URL,
#               or against a throwaway server it starts and stops
#   make test   unit + integration tests with -race (starts its own servers)
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME ?= 2s
# Rounds of the whole benchmark set; each round runs every contender once,
# so the contenders are interleaved over time.
BENCHROUNDS ?= 3

.PHONY: all demo test test-short test-faults bench bench-writer lint server

all: lint test

# Installs valkey-server (or Debian's redis-server) when neither is on PATH.
server:
	@bash scripts/install-server.sh

demo: server
	$(GO) run ./internal/tools/withserver -- $(GO) run ./examples/quickstart

test: server
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# Unit tests and fast integration tests only (skips nothing in CI: `make test` runs all).
test-short: server
	$(GO) test -race -short -count=1 ./...

# The fault-injection tests alone, verbose: they print the figures of the
# README's Reliability table. (`make test` runs them too.)
test-faults: server
	$(GO) test -race -count=1 -run 'TestFault' -v ./engine

# Engine vs valkey-go (defaults and MaxFlushDelay 20µs), standalone and
# cluster, same process, same servers, interleaved; prints the ratios at
# the end. (The batch writer has its own target, bench-writer.)
bench: server
	$(GO) test -c -o bench.test ./bench
	rm -f bench.out; for i in $$(seq $(BENCHROUNDS)); do ./bench.test -test.run '^$$' -test.bench '^Benchmark(Get|Set|Cluster)' -test.benchmem -test.benchtime $(BENCHTIME) | tee -a bench.out; done
	$(GO) run ./internal/tools/benchratio bench.out

# Bulk load of 1M SETs (64-byte values): the batch writer vs valkey-go
# DoMulti(1000) from 4 goroutines, the engine's futures, and
# redis-benchmark -P 128 (redis-tools), same server, BENCHROUNDS interleaved
# rounds; prints the medians and ratios after each round.
bench-writer: server
	$(GO) test -c -o bench.test ./bench
	BENCHROUNDS=$(BENCHROUNDS) ./bench.test -test.run '^$$' -test.bench '^BenchmarkWriter$$' -test.benchtime 1x -test.benchmem | tee bench-writer.out

# go mod tidy -diff exits non-zero and prints the diff when go.mod/go.sum
# are not tidy (a direct dependency marked // indirect, a stale sum line).
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
