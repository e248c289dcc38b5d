#!/usr/bin/env bash
# Latency against uWSGI, like for like (issue 15): drover -k thread and
# -k event, uWSGI --http11-socket + threads and gunicorn gthread on the shared
# WSGI hello, 2 workers x 4 threads each (peers.sh's command lines), in one
# sitting, N rounds, medians reported.
#
# Why not just wrk -c50's p99: uWSGI's http11 thread keeps its connection
# until the client closes it, so 2 x 4 threads serve 8 of wrk's 50
# connections; the other 42 sit in the kernel's accept queue for the whole run
# and wrk's latency covers only completed requests.  So per server:
#   c8    wrk -t1 -c8: every server can give each client a thread (like for like)
#   c50   wrk -t1 -c50, and during it fairness_probe.py:
#         - a new client every 100 ms (20 of them) on a new connection, one GET,
#           timed to its complete response; unanswered = none within 3 s or
#           before the load stopped;
#         - how many of wrk's 50 connections received any response byte
#           (ss -tni on the client side near the end of the run: see the probe)
#   The c50 run lasts max(D, 6) s so that the last probe's 3 s fit in the load.
# usage: contrib/bench/fairness.sh [-d SECONDS] [-n ROUNDS] [-w WORKERS]
#   DROVER_BUILD (default build/) holds supervisor/drover; PEERS: peers.sh
#   (its apps/ directory).  Ports 8130-8133.
set -u
D=5 N=3 W=2
while getopts d:n:w: o; do
  case $o in d) D=$OPTARG ;; n) N=$OPTARG ;; w) W=$OPTARG ;; *) exit 2 ;; esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd) || exit 2
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
APPS=$(cd "$(dirname "$PEERS")/apps" && pwd) || exit 2
PY=/usr/bin/python3
D50=$(awk -v d="$D" 'BEGIN{print (d < 6 ? 6 : d)}')
busy=$(ss -ltnH 2>/dev/null | awk '{print $4}' | grep -E ':813[0-3]$')
[ -n "$busy" ] && { echo "fairness.sh: ports in use ($busy)" >&2; exit 1; }
TMP=$(mktemp -d)
SRV=
cleanup() {
  [ -n "$SRV" ] && stop_server
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# NAME PORT COMMAND...: the same command lines as peers.sh / wsgi.sh
servers() {
  cat <<EOF
drover-thread 8130 $BUILD/supervisor/drover -k thread -w $W --threads 4 -b 127.0.0.1:8130 --log-level warning --chdir $APPS hello:app
drover-event 8131 $BUILD/supervisor/drover -k event -w $W --threads 4 -b 127.0.0.1:8131 --log-level warning --chdir $APPS hello:app
uwsgi-http11-threads 8132 uwsgi --plugin python3 --master --processes $W --threads 4 --die-on-term --http11-socket 127.0.0.1:8132 --wsgi-file hello.py --callable app --disable-logging
gunicorn-gthread 8133 gunicorn -w $W --threads 4 -k gthread -b 127.0.0.1:8133 hello:app
EOF
}

stop_server() { # TERM, then KILL after 5 s, the server we started (by pid)
  kill -TERM "$SRV" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SRV" 2>/dev/null
  wait "$SRV" 2>/dev/null
  SRV=
}

ms() { # wrk's "1.23ms" / "456.00us" / "1.02s" -> ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0;
                       else if (v ~ /s$/) printf "%.3f", v*1000; else print "nan" }'
}

wrk_line() { # OUTPUT -> "rps=.. p50=..ms p99=..ms"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/{printf "%.0f", $2}' <<<"$1")
  p50=$(ms "$(awk '$1=="50%"{print $2}' <<<"$1")")
  p99=$(ms "$(awk '$1=="99%"{print $2}' <<<"$1")")
  echo "rps=${rps:-nan} p50=${p50}ms p99=${p99}ms"
}

echo "# fairness.sh: WSGI hello, $W workers x 4 threads, wrk -t1, c8 ${D}s and c50 ${D50}s + probe," \
     "$N rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
say() { echo "$*"; echo "$*" >>"$TMP/rounds"; }
servers >"$TMP/servers"
for r in $(seq "$N"); do
  while read -r name port cmd <&3; do
    # shellcheck disable=SC2086
    (cd "$APPS" && exec $cmd) </dev/null >"$TMP/$name.log" 2>&1 &
    SRV=$!
    up=0
    for _ in $(seq 100); do
      curl -s -o /dev/null "http://127.0.0.1:$port/" && { up=1; break; }
      sleep 0.1
    done
    if [ $up = 0 ]; then
      say "round $r $name did not answer on port $port:"; tail -3 "$TMP/$name.log"
      stop_server; continue
    fi
    out=$(wrk -t1 -c8 -d"${D}s" --latency "http://127.0.0.1:$port/" </dev/null 2>&1)
    say "round $r $name c8 $(wrk_line "$out")"
    wrk -t1 -c50 -d"${D50}s" --latency "http://127.0.0.1:$port/" </dev/null >"$TMP/wrk50" 2>&1 &
    wpid=$!  # started first: the probe's clock and wrk's run begin together
    probe=$($PY "$HERE/fairness_probe.py" --port "$port" --duration "$D50")
    wait "$wpid"
    out=$(cat "$TMP/wrk50")
    say "round $r $name c50 $(wrk_line "$out") ${probe#probe }"
    stop_server
  done 3<"$TMP/servers"
done

# medians over rounds, one line per server and load, then the markdown table
$PY - "$TMP/rounds" "$D" "$D50" "$N" <<'PY'
import re, statistics, sys

rounds, D, D50, N = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
vals = {}  # (server, load) -> {key: [values]}
for line in open(rounds):
    m = re.match(r"round \d+ (\S+) (c8|c50) (.*)", line)
    if not m:
        continue
    d = vals.setdefault((m.group(1), m.group(2)), {})
    for k, v in re.findall(r"(\w+)=([^\s]+)", m.group(3)):
        try:
            d.setdefault(k, []).append(float(v.rstrip("ms")) if k != "n" else float(v))
        except ValueError:
            pass

# wrk's closed loop keeps one request outstanding per connection, served or
# not, so Little's law gives the mean time a request spends in the server
# over all 50 clients: L = lambda * W, W = 50 / req/s.  wrk's own latency
# figures cover only the requests that completed.
for (s, load), d in vals.items():
    if load == "c50" and d.get("rps"):
        d["little"] = [50e3 / r for r in d["rps"] if r]


def med(s, load, k):
    v = vals.get((s, load), {}).get(k)
    return statistics.median(v) if v else None

servers = ["drover-thread", "drover-event", "uwsgi-http11-threads", "gunicorn-gthread"]
keys8 = ["rps", "p50", "p99"]
keys50 = ["rps", "p50", "p99", "little", "served", "conns", "max_ms", "p50_ms", "unanswered", "n"]
print()
for s in servers:
    for load, keys in (("c8", keys8), ("c50", keys50)):
        if (s, load) in vals:
            print(f"median {s} {load} " + " ".join(
                f"{k}={med(s, load, k):g}" for k in keys if med(s, load, k) is not None))

def f(v, unit):
    if v is None or v != v:  # nan: no client answered
        return "-"
    if v == float("inf"):
        return "timeout"
    return f"{v:,.0f}" if unit == "req/s" else (f"{v:.0f}" if unit in ("/50", "") else f"{v:.2f} ms")

rows = [("c8 req/s", "c8", "rps", "req/s"), ("c8 p50", "c8", "p50", "ms"), ("c8 p99", "c8", "p99", "ms"),
        ("c50 req/s", "c50", "rps", "req/s"), ("c50 p50", "c50", "p50", "ms"),
        ("c50 p99 (of the requests completed)", "c50", "p99", "ms"),
        ("c50 mean latency over all 50 clients (Little: 50 / req/s)", "c50", "little", "ms"),
        ("c50 wrk connections served", "c50", "served", "/50"),
        ("c50 new client wait, max (answered)", "c50", "max_ms", "ms"),
        ("c50 new client wait, p50", "c50", "p50_ms", "ms"),
        ("c50 new clients unanswered", "c50", "unanswered", "")]
print()
print(f"WSGI hello, 2 workers x 4 threads, wrk -t1 (c8 {D} s, c50 {D50} s), medians of {N} rounds")
print()
print("| | drover thread | drover event | uWSGI http11+threads | gunicorn gthread | thread / uWSGI | event / uWSGI |")
print("|---|---|---|---|---|---|---|")
for title, load, k, unit in rows:
    v = [med(s, load, k) for s in servers]
    def ratio(a, b):
        if a is None or b is None or not 0 < b < float("inf") or not a < float("inf"):
            return "-"
        return f"{a / b:.2f}"
    cells = [f(x, unit) + ("/50" if unit == "/50" and x is not None else "") for x in v]
    if k == "unanswered":
        n = [med(s, load, "n") for s in servers]
        cells = [f"{f(x, '')}/{f(y, '')}" if x is not None else "-" for x, y in zip(v, n)]
    print(f"| {title} | " + " | ".join(cells) + f" | {ratio(v[0], v[2])} | {ratio(v[1], v[2])} |")
PY
