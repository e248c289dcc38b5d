#!/usr/bin/env bash
# drover's three models on the shared WSGI hello app next to gunicorn, uWSGI
# and nginx, in one sitting through peers.sh's EXTRA_FILE, so every figure is
# read as a ratio on the same machine at the same time.
# usage: contrib/bench/wsgi.sh [-d SECONDS] [-c CONNECTIONS] [-w WORKERS] [-a app|slow] [MODEL...]
#   DROVER_BUILD (default build/) holds supervisor/drover; PEERS: peers.sh.
set -u
D=5 C=50 W=2 APP=app
while getopts d:c:w:a: o; do
  case $o in d) D=$OPTARG ;; c) C=$OPTARG ;; w) W=$OPTARG ;; a) APP=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
MODELS=${*:-sync thread event}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd) || exit 2
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
APPS=$(cd "$(dirname "$PEERS")/apps" && pwd) || exit 2
EXTRA=$(mktemp)
trap 'rm -f "$EXTRA"' EXIT
port=8120
for m in $MODELS; do
  # threads 4, as peers.sh gives gunicorn gthread and uWSGI (same processes x threads)
  echo "drover-py-$m $port $BUILD/supervisor/drover -k $m -w $W --threads 4" \
       "-b 127.0.0.1:$port --log-level warning --chdir $APPS hello:$APP" >>"$EXTRA"
  port=$((port + 1))
done
exec bash "$PEERS" -d "$D" -c "$C" -w "$W" -a "$APP" "$EXTRA"
