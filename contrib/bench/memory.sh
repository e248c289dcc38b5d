#!/usr/bin/env bash
# Memory per worker beside the peers, in one sitting: Pss and private memory
# (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup) per worker, the
# mean over the pool after a short wrk run touched every worker, for
#   hello.so (drover only: the peers have no C app ABI),
#   the WSGI hello (the peers' own apps/hello.py) and the Flask example,
# each with and without preload: drover --preload, gunicorn --preload, and
# uWSGI's default (the app is loaded in the master) vs --lazy-apps.
# usage: contrib/bench/memory.sh [-w WORKERS] [-q]   (-q: WSGI hello only)
#   DROVER_BUILD (default build/); PEERS: peers.sh (its apps/ dir is used).
# Prints one line per server and a line "memory: ..." that all.sh reads.
set -u
W=4 QUICK=0
while getopts w:q o; do
  case $o in w) W=$OPTARG ;; q) QUICK=1 ;; *) exit 2 ;; esac
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd) || exit 2
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
APPS=$(cd "$(dirname "$PEERS")/apps" && pwd) || exit 2
EX=$ROOT/contrib/examples
DROVER=$BUILD/supervisor/drover
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
declare -A PRIV

# mean Pss and private kB over the children of a master pid
measure() {
  local pss=0 priv=0 n=0 p
  for p in $(pgrep -P "$1"); do
    read -r a b < <(awk '/^Pss:/{p=$2} /^Private_(Clean|Dirty):/{v+=$2} END{print p+0, v+0}' \
      "/proc/$p/smaps_rollup" 2>/dev/null) || continue
    pss=$((pss + a)) priv=$((priv + b)) n=$((n + 1))
  done
  [ "$n" -gt 0 ] && echo "$((pss / n)) $((priv / n)) $n" || echo "0 0 0"
}

run() { # NAME DIR COMMAND...
  local name=$1 dir=$2; shift 2
  PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local cmd=("${@//@PORT@/$PORT}")
  (cd "$dir" && exec "${cmd[@]}") >"$TMP/$name.log" 2>&1 &
  local pid=$! up=0
  for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && { up=1; break; }
    sleep 0.1
  done
  if [ $up = 1 ]; then
    # every worker has booted and served (wait until W children exist)
    for _ in $(seq 100); do [ "$(pgrep -P "$pid" | wc -l)" -ge "$W" ] && break; sleep 0.1; done
    wrk -t1 -c"$((W * 2))" -d1s "http://127.0.0.1:$PORT/" >/dev/null 2>&1
    read -r pss priv n < <(measure "$pid")
    printf '%-30s workers=%-2s pss_kb=%-7s private_kb=%-7s\n' "$name" "$n" "$pss" "$priv"
    PRIV[$name]=$priv
  else
    printf '%-30s did not answer (log: %s)\n' "$name" "$TMP/$name.log"
    cat "$TMP/$name.log" | tail -3
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

UW=(uwsgi --plugin python3 --master --processes "$W" --die-on-term --disable-logging
    --http-socket 127.0.0.1:@PORT@)
echo "# $W sync workers each; mean per worker after wrk -d1s; $(nproc) cores"
if [ $QUICK = 0 ]; then
  run drover-hello.so "$ROOT" "$DROVER" -w "$W" -b 127.0.0.1:@PORT@ --log-level warning \
    "so:$BUILD/contrib/hello.so"
fi
apps=("hello $APPS hello.py app")
[ $QUICK = 0 ] && apps+=("flask $EX flask_app.py app")
for spec in "${apps[@]}"; do
  read -r app dir file callable <<<"$spec"
  mod=${file%.py}
  for pre in "" preload; do
    sfx=${pre:+-preload}
    run "drover-$app$sfx" "$dir" "$DROVER" -w "$W" -b 127.0.0.1:@PORT@ --log-level warning \
      ${pre:+--preload} "$mod:$callable"
    run "gunicorn-$app$sfx" "$dir" gunicorn -w "$W" -b 127.0.0.1:@PORT@ ${pre:+--preload} \
      "$mod:$callable"
    if command -v uwsgi >/dev/null; then # uWSGI preloads by default; --lazy-apps does not
      lazy=(--lazy-apps); [ -n "$pre" ] && lazy=()
      run "uwsgi-$app$sfx" "$dir" "${UW[@]}" --wsgi-file "$file" --callable "$callable" \
        "${lazy[@]}"
    fi
  done
done
# private memory per worker, drover / the smaller of the two peers, per case
line="memory:"
for k in "${!PRIV[@]}"; do
  case $k in drover-hello.so) continue ;; drover-*) ;; *) continue ;; esac
  c=${k#drover-}
  g=${PRIV[gunicorn-$c]:-} u=${PRIV[uwsgi-$c]:-}
  best=$g; [ -n "$u" ] && { [ -z "$best" ] || [ "$u" -lt "$best" ]; } && best=$u
  [ -n "$best" ] && line+=$(awk -v c="$c" -v d="${PRIV[$k]}" -v b="$best" \
    'BEGIN { printf " %s=%.2f", c, d / b }')
done
echo "$line (drover private kB per worker / smallest peer's)"
