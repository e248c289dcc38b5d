#!/usr/bin/env bash
# The sampler at the seeds' scale: WORKERS thread-model workers (default 40)
# running a WSGI app that starts 45 idle threads each (about 50 threads per
# worker with the request threads), sampled every second.  Measures the
# master's CPU from /proc/PID/stat over SECONDS and reads the sampler's own
# pass figures (wall time of the last and the slowest pass, and its CPU).
# Usage: contrib/bench/sampler_scale.sh [WORKERS] [SECONDS]
# Environment: DROVER_BUILD (default build), PORT (default: a free one), THREADS (4),
#   SAMPLER_ARGS (extra drover flags, e.g. "--sample-per-thread all").
# Prints one line "sampler_scale: ..." that contrib/bench/all.sh reads.
set -euo pipefail
WORKERS=${1:-40}
SECONDS_=${2:-20}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd)
PORT=${PORT:-$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
THREADS=${THREADS:-4}
DIR=$(mktemp -d /tmp/drover-bench.XXXXXX)
BIN=$BUILD/supervisor/drover

# shellcheck disable=SC2086
"$BIN" -k thread --threads "$THREADS" -w "$WORKERS" -b "127.0.0.1:$PORT" \
	--pidfile "$DIR/drover.pid" --sample-interval 1 --log-level warning \
	--chdir "$ROOT/contrib/bench/apps" ${SAMPLER_ARGS:-} idle_threads:app 2>"$DIR/drover.log" &
MASTER=$!
cleanup() {
	kill -TERM "$MASTER" 2>/dev/null && wait "$MASTER" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

oncpu() { awk '{ print $1 }' "/proc/$1/schedstat"; } # ns on a CPU (the master has one thread)
status() { "$BIN" ctl --pidfile "$DIR/drover.pid" --json status 2>/dev/null || true; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }

ready=0
for _ in $(seq 600); do # every worker ready (Python start on a loaded host is slow)
	ready=$(status | field ready)
	[ "${ready:-0}" -ge "$WORKERS" ] && break
	sleep 0.2
done
threads=$(for p in $(pgrep -P "$MASTER"); do awk '/^Threads/{print $2}' "/proc/$p/status" || true; done |
	awk '{ s += $1; n++ } END { printf "%.0f", n ? s / n : 0 }')
echo "workers ready: ${ready:-0}/$WORKERS, threads per worker: $threads"
sleep 3 # two passes so that every worker has a delta, and the first smaps reads are done
metric() { { "$BIN" ctl --pidfile "$DIR/drover.pid" metrics 2>/dev/null || true; } | awk -v m="$1" '$1 == m { print $2 }'; }
over0=$(metric 'drover_sampler_pass_seconds_bucket{le="0.01"}') n0=$(metric drover_sampler_pass_seconds_count)
t0=$(oncpu "$MASTER") s0=$(date +%s.%N)
sleep "$SECONDS_"
t1=$(oncpu "$MASTER") s1=$(date +%s.%N)
over1=$(metric 'drover_sampler_pass_seconds_bucket{le="0.01"}') n1=$(metric drover_sampler_pass_seconds_count)
js=$(status)
last=$(field sampler_last_pass_us <<<"$js")
max=$(field sampler_max_pass_us <<<"$js")
cpu_pass=$(field sampler_last_pass_cpu_us <<<"$js")
vcsw=$(field pool_vcsw_per_s <<<"$js")
awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v w="$WORKERS" -v t="$threads" \
	-v last="$last" -v max="${max:-nan}" -v cp="$cpu_pass" -v vc="$vcsw" \
	-v fast=$((${over1%.*} - ${over0%.*})) -v n=$((${n1%.*} - ${n0%.*})) 'BEGIN {
	pct = 100 * (b - a) / 1e9 / (e - s)
	printf "sampler_scale: %d workers x %d threads: master CPU %.2f%% of a core over %.0f s; " \
	       "%d of %d passes <= 10 ms (last %.1f ms, max since start %.1f ms); " \
	       "last pass CPU %.1f ms; pool vcsw/s %.0f\n",
	       w, t, pct, e - s, fast, n, last / 1000, max / 1000, cp / 1000, vc }'
