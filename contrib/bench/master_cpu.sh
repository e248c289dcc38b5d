#!/usr/bin/env bash
# The master's own CPU cost: start drover with N sync workers (default 64)
# sampling every second, optionally under load (wrk, if installed), and
# measure the master's utime+stime from /proc/PID/stat over SECONDS.  Prints
# the master's CPU as a percentage of one core and the sampler's own figures.
# Usage: contrib/bench/master_cpu.sh [WORKERS] [SECONDS] [load|idle]
# Environment: DROVER_BUILD (default build), PORT (default 18600).
set -euo pipefail
WORKERS=${1:-64}
SECONDS_=${2:-20}
MODE=${3:-load}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${DROVER_BUILD:-$ROOT/build}
PORT=${PORT:-18600}
DIR=$(mktemp -d /tmp/drover-bench.XXXXXX)
BIN=$BUILD/supervisor/drover
CLK=$(getconf CLK_TCK)

"$BIN" -w "$WORKERS" -b "127.0.0.1:$PORT" --pidfile "$DIR/drover.pid" --sample-interval 1 \
	--backlog 4096 "so:$BUILD/contrib/hello.so" 2>"$DIR/drover.log" &
MASTER=$!
LOADPID=
cleanup() {
	[ -n "$LOADPID" ] && kill "$LOADPID" 2>/dev/null
	kill -TERM "$MASTER" 2>/dev/null && wait "$MASTER" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

ticks() { # utime + stime of a pid, in clock ticks
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

for _ in $(seq 100); do # wait for every worker's readiness, never a fixed sleep
	ready=$("$BIN" ctl --pidfile "$DIR/drover.pid" --json status 2>/dev/null |
		sed -n 's/.*"ready":\([0-9]*\).*/\1/p' | head -1)
	[ "${ready:-0}" -ge "$WORKERS" ] && break
	sleep 0.2
done
echo "workers ready: ${ready:-0}/$WORKERS"

if [ "$MODE" = load ] && command -v wrk >/dev/null; then
	wrk -t2 -c64 -d$((SECONDS_ + 5))s "http://127.0.0.1:$PORT/" >"$DIR/wrk.log" 2>&1 &
	LOADPID=$!
	sleep 2 # let the load reach a steady state before measuring
fi

t0=$(ticks "$MASTER")
s0=$(date +%s.%N)
sleep "$SECONDS_"
t1=$(ticks "$MASTER")
s1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$CLK" -v w="$WORKERS" -v m="$MODE" \
	'BEGIN { cpu = (b - a) / hz; printf "master CPU (%s, %d workers): %.3f s over %.1f s = %.2f%% of a core\n", m, w, cpu, e - s, 100 * cpu / (e - s) }'
"$BIN" ctl --pidfile "$DIR/drover.pid" status | sed -n '1,6p'
