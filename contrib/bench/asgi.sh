#!/usr/bin/env bash
# drover's asgi worker next to uvicorn and gunicorn with uvicorn's worker, in
# one sitting, on the same app (contrib/bench/asgi_app.py: "/" hello, "/sleep"
# a 20 ms await), 2 workers each, wrk -c50 and -c500; each figure is the
# median of RUNS runs.  Prints one table row per server, path and
# concurrency: requests/s and p99 latency.
# usage: contrib/bench/asgi.sh [-d SECONDS] [-r RUNS] [-w WORKERS]
#   DROVER_BUILD (default build/); Debian's python3-uvicorn, python3-uvloop,
#   python3-httptools, gunicorn and wrk.
set -u
D=5 RUNS=3 W=2
while getopts d:r:w: o; do
  case $o in d) D=$OPTARG ;; r) RUNS=$OPTARG ;; w) W=$OPTARG ;; *) exit 2 ;; esac
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd) || exit 2
HERE=$ROOT/contrib/bench
DIR=$(mktemp -d /tmp/drover-asgi-bench.XXXXXX)
SRV=
cleanup() {
  [ -n "$SRV" ] && kill -TERM "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT

start() { # name port -> SRV (pid), waits until it answers
  local name=$1 port=$2
  cd "$HERE" || exit 2
  case $name in
  drover) "$BUILD/supervisor/drover" -k asgi -w "$W" -b "127.0.0.1:$port" --backlog 4096 \
            --worker-connections 2000 asgi_app:app ;;
  uvicorn) /usr/bin/python3 -m uvicorn --workers "$W" --port "$port" --loop uvloop \
            --http httptools --no-access-log --log-level warning --backlog 4096 asgi_app:app ;;
  gunicorn-uvicorn) /usr/bin/python3 -m gunicorn -w "$W" -b "127.0.0.1:$port" --backlog 4096 \
            -k uvicorn.workers.UvicornWorker --log-level warning asgi_app:app ;;
  esac >"$DIR/$name.log" 2>&1 &
  SRV=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "# $name did not start:" >&2; tail -5 "$DIR/$name.log" >&2; return 1
}

stop() {
  kill -TERM "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  SRV=
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

one() { # port path conns -> "rps p99_ms"
  wrk -t2 -c"$3" -d"${D}s" --latency "http://127.0.0.1:$1$2" 2>&1 | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)}
              else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
    / Socket errors/ {err=$0}
    END {printf "%s %s\n", rps, p99}'
}

printf '%-17s %-7s %5s %10s %9s\n' server path conns "req/s" "p99 ms"
port=18900
for name in drover uvicorn gunicorn-uvicorn; do
  port=$((port + 1))
  start "$name" "$port" || continue
  for path in / /sleep; do
    for c in 50 500; do
      wrk -t2 -c"$c" -d1s "http://127.0.0.1:$port$path" >/dev/null 2>&1 # warm-up
      : >"$DIR/runs"
      for _ in $(seq "$RUNS"); do one "$port" "$path" "$c" >>"$DIR/runs"; done
      rps=$(cut -d' ' -f1 "$DIR/runs" | median)
      p99=$(cut -d' ' -f2 "$DIR/runs" | median)
      printf '%-17s %-7s %5s %10.0f %9.2f\n' "$name" "$path" "$c" "$rps" "$p99"
    done
  done
  stop
done
