#!/usr/bin/env bash
# How evenly the workers share keep-alive load, and the tail it costs: for
# each worker count, drover (thread model by default) serves wrk -c50 on
# hello.so and on the WSGI hello app; each worker's share of the requests
# (read from `drover ctl status` before and after the run, so warm-up is not
# counted), the largest deviation from the mean, req/s and wrk's p99.
# The README's "Thread model: balance and overload" target: every share
# within +-25% of the mean.
# usage: contrib/bench/balance.sh [-d SECONDS] [-c CONNECTIONS] [-k MODEL]
#                                 [-t THREADS] [-a c|wsgi|both] [WORKERS...]
#   DROVER_BUILD (default build/) holds supervisor/drover and contrib/hello.so;
#   APPS (default ../shared/bench/apps) holds hello.py.
set -u
D=5 C=50 K=thread T=4 A=both
while getopts d:c:k:t:a: o; do
  case $o in d) D=$OPTARG ;; c) C=$OPTARG ;; k) K=$OPTARG ;; t) T=$OPTARG ;; a) A=$OPTARG ;;
  *) exit 2 ;; esac
done
shift $((OPTIND - 1))
COUNTS=${*:-2 4 8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd) || exit 2
DROVER=$BUILD/supervisor/drover
APPS=${APPS:-$ROOT/../shared/bench/apps}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v wrk >/dev/null || { echo "balance.sh: needs wrk" >&2; exit 2; }
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# requests per worker pid, one "pid requests" a line, once W are ready
status() {
  "$DROVER" ctl --pidfile "$TMP/d.pid" --json status 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
ws = [w for w in d["workers"] if w.get("state") in ("idle", "busy")]
if d["master"]["ready"] < int(sys.argv[1]) or len(ws) < int(sys.argv[1]):
    sys.exit(1)
for w in ws:
    print(w["pid"], w["requests"], w.get("connections", 0), w.get("accepted", 0))' "$1"
}

# NAME WORKERS APPSPEC...
one() {
  local name=$1 w=$2 port=$((8130 + RANDOM % 400)); shift 2
  "$DROVER" -k "$K" -w "$w" --threads "$T" -b "127.0.0.1:$port" --log-level warning \
    --pidfile "$TMP/d.pid" "$@" >"$TMP/log" 2>&1 &
  PID=$!
  local ok=0
  for _ in $(seq 200); do # every worker ready (up to 20 s on a loaded machine)
    if curl -s -o /dev/null "http://127.0.0.1:$port/" && status "$w" >/dev/null; then
      ok=1; break
    fi
    sleep 0.1
  done
  if [ $ok = 1 ]; then
    wrk -t1 -c"$C" -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 # warm-up
    sleep 1.2 # the master samples the counters once a second
    status "$w" >"$TMP/before"
    wrk -t1 -c"$C" -d"${D}s" --latency "http://127.0.0.1:$port/" >"$TMP/wrk" 2>&1 &
    local wp=$!
    sleep "$(awk -v d="$D" 'BEGIN{print d * 0.6}')"
    status "$w" >"$TMP/mid" # open connections per worker, mid-run
    wait "$wp"
    sleep 1.2
    status "$w" >"$TMP/after"
    local rps p99
    rps=$(awk '/Requests\/sec/{print $2}' "$TMP/wrk")
    p99=$(awk '$1=="99%"{print $2}' "$TMP/wrk")
    "$PY" - "$TMP/before" "$TMP/after" "$TMP/mid" "$name" "$w" "$rps" "$p99" <<'PY'
import sys
def load(p):
    return {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(p) if l.strip()}
b, a = load(sys.argv[1]), load(sys.argv[2])
shares = [a[p][0] - b.get(p, [0])[0] for p in a]
m = load(sys.argv[3])
conns = [m[p][1] for p in a if p in m]
acc = [a[p][2] - b.get(p, [0, 0, 0])[2] for p in a]
mean = sum(shares) / len(shares) if shares else 0
dev = max(abs(s - mean) / mean * 100 for s in shares) if mean else 100.0
print("%-6s w=%-2s rps=%-9s p99=%-9s maxdev=%5.1f%%  %-6s shares=%s connections=%s accepted=%s" % (
    sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], dev,
    "ok" if dev <= 25 else "UNEVEN", shares, conns, acc))
PY
  else
    echo "$name w=$w: not all workers ready (log: $(tail -2 "$TMP/log"))"
  fi
  kill -TERM "$PID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PID" 2>/dev/null
  wait "$PID" 2>/dev/null
  PID=
}

echo "# drover -k $K --threads $T, wrk -t1 -c$C -d${D}s, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for w in $COUNTS; do
  case $A in c | both) one c "$w" "so:$BUILD/contrib/hello.so" ;; esac
  case $A in wsgi | both) one wsgi "$w" --chdir "$APPS" hello:app ;; esac
done
