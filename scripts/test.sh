#!/usr/bin/env bash
# `make test`: vet and test (-race) the three modules: the library, the
# vactor CLI (cmd/vactor) and the glide driver (drivers/glide).
#
# The library's engine package takes most of the suite's time (about 11
# minutes in one process, mostly waiting on the servers its fault tests
# stop, kill and fail over), so its tests run as two processes at once,
# each with half of them (every other name); beside them, the library's
# other packages then the CLI's module, and the glide driver's module
# (from its start: glide's cgo build takes minutes from an empty build
# cache), at a lower CPU priority. Each is a process of its own, so each
# test's goroutine snapshots see its own process only. The engine's output comes first;
# the others' follows. The exit status is non-zero if any of them failed.
set -uo pipefail
GO=${GO:-go}
TIMEOUT=${TIMEOUT:-20m}
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
# Each run in a process group of its own (job control), so that a TERM or
# INT to this script stops every go test under it, not only the subshells
# (bash runs a trap only between commands: the runs are waited for, not
# run in the foreground, so that the trap can run).
set -m
pids=()
stop() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
}
trap 'stop; rm -rf "$tmp"' EXIT
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT

gotest() { "$GO" test -race -count=1 -timeout "$TIMEOUT" "$@"; }

module() { # module DIR: vet and test the module in DIR
	echo "== $1"
	(cd "$1" && "$GO" vet ./... && gotest ./...) || { echo "== $1: FAILED"; return 1; }
}

others() { # the library's other packages, then the CLI's module
	local rc=0
	echo "== . (all but engine)"
	"$GO" vet ./... && gotest $("$GO" list ./... | grep -v '/engine$') || { echo "== .: FAILED"; rc=1; }
	module cmd/vactor || rc=1
	return $rc
}

# At a lower CPU priority than the engine's runs, whose fault tests
# assert timing bounds (a sweep of every cluster slot within 3 s of a
# failover, ...): what the others leave idle is theirs.
lower() { renice -n 10 -p "$BASHPID" >/dev/null 2>&1 || true; }
(lower; module drivers/glide) >"$tmp/glide.out" 2>&1 &
pids+=($!)
glidePid=$!
(lower; others) >"$tmp/others.out" 2>&1 &
pids+=($!)
othersPid=$!

rc=0
echo "== ./engine (two processes, each with every other test; the other packages run meanwhile, their output follows)"
# Built once, then listed: the two runs use the cached test binary.
if ! gotest -run '^$' ./engine >/dev/null || ! names=$("$GO" test -race -list '.*' ./engine | grep -E '^(Test|Example|Fuzz)'); then
	echo "== ./engine: its tests could not be built or listed"
	rc=1
else
	shards=("" "")
	i=0
	for n in $names; do
		shards[i%2]+="${shards[i%2]:+|}$n"
		i=$((i + 1))
	done
	for s in 0 1; do
		(gotest -run "^(${shards[s]})\$" ./engine) >"$tmp/engine$s.out" 2>&1 &
		pids+=($!)
	done
	set +m # every run has its process group: no job notices from here on (review-33b B6)
	for s in 0 1; do
		status=0
		wait "${pids[s + 2]}" || status=$?
		echo "-- ./engine, process $((s + 1)) of 2"
		cat "$tmp/engine$s.out"
		if [ "$status" -ne 0 ]; then
			echo "== ./engine process $((s + 1)): FAILED (exit status $status)"
			rc=1
		fi
	done
fi

for job in others glide; do
	pid=$othersPid
	[ "$job" = glide ] && pid=$glidePid
	status=0
	wait "$pid" || status=$?
	cat "$tmp/$job.out"
	[ "$status" -eq 0 ] || rc=1
done
pids=()
exit $rc
