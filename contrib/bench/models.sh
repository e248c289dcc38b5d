#!/usr/bin/env bash
# drover's worker models on hello.so next to the peers (nginx return 200,
# gunicorn, uWSGI) in one sitting, through peers.sh's EXTRA_FILE, so every
# figure is read as a ratio to nginx on the same machine at the same time.
# usage: contrib/bench/models.sh [-d SECONDS] [-c CONNECTIONS] [-w WORKERS] [MODEL...]
#   DROVER_BUILD (default build/) holds supervisor/drover and contrib/hello.so;
#   PEERS (default /work/shared/bench/peers.sh).
set -u
D=5 C=50 W=2
while getopts d:c:w: o; do
  case $o in d) D=$OPTARG ;; c) C=$OPTARG ;; w) W=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
MODELS=${*:-sync thread event}
BUILD=$(cd "${DROVER_BUILD:-build}" && pwd) || exit 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
EXTRA=$(mktemp)
trap 'rm -f "$EXTRA"' EXIT
port=8110
for m in $MODELS; do
  if "$BUILD/supervisor/drover" -k "$m" --check-config "so:$BUILD/contrib/hello.so" 2>&1 |
      grep -q "not available yet"; then
    echo "# drover-$m: not available in this build" >&2
    continue
  fi
  echo "drover-$m $port $BUILD/supervisor/drover -k $m -w $W -b 127.0.0.1:$port" \
       "--log-level warning so:$BUILD/contrib/hello.so" >>"$EXTRA"
  port=$((port + 1))
done
exec bash "$PEERS" -d "$D" -c "$C" -w "$W" "$EXTRA"
