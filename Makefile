# vactor — the two commands a fresh Debian machine with Go needs:
#   make demo   runs examples/quickstart against $VALKEY_ADDR / $VALKEY_URL
#               (or the other VALKEY_* address variables),
#               or against a throwaway server it starts and stops;
#               DRIVER=glide runs it over the glide driver (with
#               GODEBUG=invalidptr=0, which glide needs: docs/drivers.md)
#   make test   unit + integration tests with -race (starts its own servers),
#               of the library, of the vactor CLI (cmd/vactor, a module of
#               its own) and of the glide driver (drivers/glide, a module of
#               its own: it needs cgo and gcc)
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME ?= 2s
# Rounds of the whole benchmark set; each round runs every contender once,
# so the contenders are interleaved over time.
BENCHROUNDS ?= 3

# The vactor CLI: a module of its own, so that its dependencies (go-redis,
# progress bar, charts) stay out of the library's go.mod.
CLI := cmd/vactor
# The glide driver: a module of its own, so that the library stays pure Go
# (glide links a prebuilt Rust library through cgo; its first build takes a
# minute or two, later ones are cached).
GLIDE := drivers/glide
# DRIVER=glide makes `make demo` run the quickstart over the glide driver.
DRIVER ?=

.PHONY: all demo test test-short test-faults bench bench-hooks bench-writer bench-glide bench-peers bench-load vactor lint server

all: lint test

# Installs valkey-server (or Debian's redis-server) when neither is on PATH.
server:
	@bash scripts/install-server.sh

demo: server
ifeq ($(DRIVER),glide)
	cd $(GLIDE) && $(GO) build -o ../../bin/quickstart-glide ./examples/quickstart
	GODEBUG=invalidptr=0 $(GO) run ./internal/tools/withserver -- ./bin/quickstart-glide
else
	$(GO) run ./internal/tools/withserver -- $(GO) run ./examples/quickstart
endif

# The three modules: scripts/test.sh (the engine package's tests in two
# processes at once, the rest beside them; the engine's output first).
test: server
	GO=$(GO) bash scripts/test.sh

# Unit tests and fast integration tests only (skips nothing in CI: `make test` runs all).
test-short: server
	$(GO) test -race -short -count=1 ./...
	cd $(CLI) && $(GO) test -race -short -count=1 ./...
	cd $(GLIDE) && $(GO) test -race -short -count=1 ./...

# The fault-injection tests alone, verbose: they print the figures of the
# README's Reliability table. (`make test` runs them too.)
test-faults: server
	$(GO) test -race -count=1 -run 'TestFault' -v ./engine

# Engine vs valkey-go (defaults and MaxFlushDelay 20µs), standalone,
# cluster and GET over TLS, same process, same servers, interleaved;
# prints the ratios at the end. (The batch writer has its own target, bench-writer.)
bench: server
	$(GO) test -c -o bench.test ./bench
	rm -f bench.out; for i in $$(seq $(BENCHROUNDS)); do ./bench.test -test.run '^$$' -test.bench '^Benchmark(Get|Set|Cluster|TLS)' -test.benchmem -test.benchtime $(BENCHTIME) | tee -a bench.out; done
	$(GO) run ./internal/tools/benchratio bench.out

# The hooks' cost (issue 11): the engine without hooks, with the otelvactor
# metrics hook and with metrics and tracing at 100% sampling, side by side
# in one process, in turns of 100,000 operations; BENCHROUNDS rounds of
# 1.2M operations per contender, GET and SET at 256 and 2,048 goroutines;
# prints each round's ratios (metrics-ratio, trace-ratio).
bench-hooks: server
	$(GO) test -c -o bench.test ./bench
	for i in $$(seq $(BENCHROUNDS)); do ./bench.test -test.run '^$$' -test.bench '^BenchmarkHooksRatio$$' -test.benchtime 1200000x; done | tee bench-hooks.out

# Bulk load of 1M SETs (64-byte values): the batch writer vs valkey-go
# DoMulti(1000) from 4 goroutines, the engine's futures, and
# redis-benchmark -P 128 (redis-tools), same server, BENCHROUNDS interleaved
# rounds; prints the medians and ratios after each round.
bench-writer: server
	$(GO) test -c -o bench.test ./bench
	BENCHROUNDS=$(BENCHROUNDS) ./bench.test -test.run '^$$' -test.bench '^BenchmarkWriter$$' -test.benchtime 1x -test.benchmem | tee bench-writer.out

# The glide driver: GET and SET at 16, 256 and 2048 goroutines through
# the engine over glide, the engine over valkey-go and raw glide
# (glide.Client), same server, BENCHROUNDS interleaved rounds; prints the
# medians and ratios.
bench-glide: server
	cd $(GLIDE) && $(GO) test -c -o ../../bench-glide.test .
	rm -f bench-glide.out; for i in $$(seq $(BENCHROUNDS)); do ./bench-glide.test -test.run '^$$' -test.bench '^Benchmark(Get|Set)$$' -test.benchmem -test.benchtime $(BENCHTIME) | tee -a bench-glide.out; done
	cd $(GLIDE) && $(GO) run ./internal/benchtable ../../bench-glide.out

# Builds the CLI into bin/vactor.
vactor:
	cd $(CLI) && $(GO) build -o ../../bin/vactor .

# vactor bench with its defaults (GET and SET; 1, 16, 256 and 2048
# goroutines; 100,000 keys of 64 B; every contender in a process of its
# own) and BENCHROUNDS rounds, against a throwaway server (the VALKEY_*
# address variables are ignored). Takes minutes. Prints the table; also
# writes bench-peers.json and bench-peers.html. BENCHPEERS_FLAGS adds
# flags, e.g. BENCHPEERS_FLAGS='-op get -concurrency 256'.
bench-peers: server vactor
	env -u VALKEY_URL -u VALKEY_ADDR -u VALKEY_ADDRS -u VALKEY_HOST -u VALKEY_PORT -u VALKEY_SENTINEL_ADDRS -u VALKEY_SENTINEL_MASTER \
		./bin/vactor bench -rounds $(BENCHROUNDS) -json bench-peers.json -html bench-peers.html $(BENCHPEERS_FLAGS) >bench-peers.out; \
		status=$$?; cat bench-peers.out; exit $$status

# vactor load vs redis-cli --pipe (redis-tools): 1M SETs of 64 B from one
# RESP file into one throwaway server, BENCHROUNDS alternating rounds.
bench-load: server
	cd $(CLI) && LOADROUNDS=$(BENCHROUNDS) $(GO) test -run '^$$' -bench '^BenchmarkLoadVsPipe$$' -benchtime 1x .

# go mod tidy -diff exits non-zero and prints the diff when go.mod/go.sum
# are not tidy (a direct dependency marked // indirect, a stale sum line).
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	CGO_ENABLED=0 $(GO) build ./...
	cd $(CLI) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) mod tidy -diff
	cd $(GLIDE) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) mod tidy -diff
