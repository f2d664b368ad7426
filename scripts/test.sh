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
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

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
(module .) || rc=1

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
