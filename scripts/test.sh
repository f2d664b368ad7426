#!/usr/bin/env bash
# `make test`: vet and test (-race) the three modules: the library, the
# vactor CLI (cmd/vactor) and the glide driver (drivers/glide).
#
# The library's run is in the foreground, its output as it comes. The CLI's
# and the glide driver's run at the same time in the background, and their
# output follows the library's: the library's engine package takes most of
# the suite's time (about 11 minutes, mostly waiting on the servers its
# fault tests stop, kill and fail over), and the other two modules (with
# glide's cgo build: minutes from an empty build cache) fit beside it
# instead of after it. The exit status is non-zero if any of the three
# failed.
set -uo pipefail
GO=${GO:-go}
TIMEOUT=${TIMEOUT:-20m}
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
# Each module's run in a process group of its own (job control), so that
# a TERM or INT to this script stops every go test under it, not only the
# subshells (bash runs a trap only between commands: the library's run is
# waited for, not run in the foreground, so that the trap can run).
set -m
pids=()
stop() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
}
trap 'stop; rm -rf "$tmp"' EXIT
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT

module() { # module DIR: vet and test the module in DIR
	cd "$1" && "$GO" vet ./... && "$GO" test -race -count=1 -timeout "$TIMEOUT" ./...
}

others=(cmd/vactor drivers/glide)
for m in "${others[@]}"; do
	(module "$m") >"$tmp/${m//\//_}.out" 2>&1 &
	pids+=($!)
done

rc=0
echo "== . (the library; ${others[*]} run meanwhile, their output follows)"
(module .) &
lib=$!
pids+=("$lib")
wait "$lib" || rc=1

for i in "${!others[@]}"; do
	m=${others[$i]}
	status=0
	wait "${pids[$i]}" || status=$?
	echo "== $m"
	cat "$tmp/${m//\//_}.out"
	if [ "$status" -ne 0 ]; then
		echo "== $m: FAILED (exit status $status)"
		rc=1
	fi
done
pids=()
exit $rc
