#!/usr/bin/env bash
# Every side-by-side benchmark in one sitting, summed up as ONE markdown table
# of ratios (the README's performance section is this output):
#   models.sh     hello.so on drover's models vs nginx `return 200`   (peers.sh)
#   wsgi.sh       the WSGI hello on drover's models vs gunicorn, uWSGI (peers.sh)
#   memory.sh     private memory per worker vs gunicorn / uWSGI
#   startup.sh    exec -> first 200, kill -> replacement answering, vs gunicorn
#   sampler_scale.sh  the master's sampling cost at 40 workers x 50 threads
#   balance.sh    (if present) the thread model's balance over workers
#   fairness.sh   WSGI thread p99 vs uWSGI at c8 (every client has a thread)
#                 and at c50 with the connections served and a new client's wait
# usage: contrib/bench/all.sh [--quick] [-d SECONDS]
#   --quick: shorter runs (2 s of wrk, the WSGI hello only for memory, one
#   start, 3 kills, a 10 s sampler window, one fairness round): about 3
#   minutes instead of 8.
#   DROVER_BUILD (default build/), PEERS (peers.sh).  Raw outputs are kept in
#   a temporary directory whose name is printed first.
set -u
QUICK=0 D=5
while [ $# -gt 0 ]; do
  case $1 in --quick) QUICK=1 ;; -d) D=$2; shift ;; *) echo "usage: $0 [--quick] [-d SECONDS]" >&2; exit 2 ;; esac
  shift
done
HERE=$(cd "$(dirname "$0")" && pwd)
# peers.sh and models.sh/wsgi.sh use fixed ports: someone else's server on
# one of them would be measured in place of ours.
busy=$(ss -ltnH 2>/dev/null | awk '{print $4}' | grep -E ':(810[1-6]|811[0-9]|812[0-9]|813[0-3])$')
[ -n "$busy" ] && { echo "all.sh: ports in use ($busy): another benchmark is running" >&2; exit 1; }
OUT=$(mktemp -d /tmp/drover-all.XXXXXX)
echo "# raw outputs: $OUT"
if [ $QUICK = 1 ]; then
  D=2 MEM=(-q) START=(-r 1 -k 3) SCALE=(40 10) FAIR=(-d 2 -n 1)
else
  MEM=() START=(-r 3 -k 5) SCALE=(40 20) FAIR=(-d "$D" -n 3)
fi
step() { # NAME COMMAND...: run with a bound, keep the output
  local name=$1; shift
  echo "# $name: $*" >&2
  timeout 600 "$@" >"$OUT/$name.txt" 2>&1 || echo "# $name exited with $?" >&2
}
step models bash "$HERE/models.sh" -d "$D" sync thread event
step wsgi bash "$HERE/wsgi.sh" -d "$D" sync thread event
step memory bash "$HERE/memory.sh" "${MEM[@]}"
step startup bash "$HERE/startup.sh" "${START[@]}"
step sampler bash "$HERE/sampler_scale.sh" "${SCALE[@]}"
[ -x "$HERE/balance.sh" ] && step balance bash "$HERE/balance.sh"
step fairness bash "$HERE/fairness.sh" "${FAIR[@]}"
/usr/bin/python3 - "$OUT" "$D" "$QUICK" <<'PY'
import os, re, sys

out, D, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"


def text(name):
    try:
        with open(os.path.join(out, name + ".txt")) as f:
            return f.read()
    except OSError:
        return ""


def peers(name):
    """{server: (rps, p99_ms)} from a peers.sh output."""
    res = {}
    for m in re.finditer(r"^(\S+)\s+rps=(\S+)\s+p99=(\S+)", text(name), re.M):
        p99 = m.group(3)
        unit = re.match(r"([\d.]+)(us|ms|s)", p99)
        ms = float(unit.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit.group(2)] if unit else None
        try:
            res[m.group(1)] = (float(m.group(2)), ms)
        except ValueError:
            pass
    return res


rows = []


def row(what, d, p, ratio_of=None, unit="req/s", better="higher"):
    if d is None or p is None:
        rows.append((what, "-", "-", "n/a"))
        return
    r = d / p if p else float("nan")
    fmt = (lambda v: f"{v:,.0f} {unit}" if unit != "ms" or v >= 10 else f"{v:.2f} {unit}") \
        if unit in ("req/s", "kB", "ms") else (lambda v: f"{v:.2f} {unit}")  # sub-10 ms keep decimals
    rows.append((what, fmt(d), fmt(p), f"{r:.2f} ({better} is better)"))


m = peers("models")
ng = m.get("nginx-return200", (None,))[0]
for model in ("event", "thread", "sync"):
    row(f"hello.so, drover {model} / nginx return 200", m.get(f"drover-{model}", (None,))[0], ng,
        unit="req/s")
w = peers("wsgi")
g = lambda k, i=0: w.get(k, (None, None))[i]
row("WSGI hello, drover sync / gunicorn sync", g("drover-py-sync"), g("gunicorn-sync"))
row("WSGI hello, drover thread / gunicorn gthread", g("drover-py-thread"), g("gunicorn-gthread"))
row("WSGI hello, drover thread / uWSGI http11 + threads", g("drover-py-thread"), g("uwsgi-http11-threads"))
row("WSGI hello p99, drover thread / uWSGI http11 + threads", g("drover-py-thread", 1),
    g("uwsgi-http11-threads", 1), unit="ms", better="lower")
row("WSGI hello, drover event / uWSGI http-socket", g("drover-py-event"), g("uwsgi-http-socket"))

mem = {}
for mm in re.finditer(r"^(\S+)\s+workers=\d+\s+pss_kb=(\d+)\s+private_kb=(\d+)", text("memory"), re.M):
    mem[mm.group(1)] = int(mm.group(3))
for case in ("hello", "hello-preload", "flask", "flask-preload"):
    d = mem.get(f"drover-{case}")
    peers_ = [(mem[k], k.split("-")[0]) for k in (f"gunicorn-{case}", f"uwsgi-{case}") if k in mem]
    if d is None or not peers_:
        continue
    best = min(peers_)
    row(f"private memory per worker, {case}: drover / {best[1]} (smallest peer)", d, best[0],
        unit="kB", better="lower")

st = {}
for mm in re.finditer(r"^(\S+)\s+start_ms=(\S+)\s+respawn_ms=(\S+)", text("startup"), re.M):
    st[mm.group(1)] = (float(mm.group(2)), float(mm.group(3)))
for sfx in ("", "-preload"):
    d, p = st.get("drover" + sfx), st.get("gunicorn" + sfx)
    if d and p:
        row(f"Flask{sfx or ' (no preload)'}, exec -> first 200 (16 workers): drover / gunicorn",
            d[0], p[0], unit="ms", better="lower")
        row(f"Flask{sfx or ' (no preload)'}, killed worker -> replacement answering: drover / gunicorn",
            d[1], p[1], unit="ms", better="lower")

s = re.search(r"master CPU ([\d.]+)% .*?(\d+) of (\d+) passes <= 10 ms \(last ([\d.]+) ms", text("sampler"))
if s:
    row("sampler at 40 x 50 threads: master CPU / goal 0.5% of a core", float(s.group(1)), 0.5,
        unit="%", better="lower")
    rows.append(("sampler at 40 x 50 threads: passes within 10 ms", f"{s.group(2)} of {s.group(3)}",
                 "all", f"last pass {s.group(4)} ms"))
fair = {}  # (server, load) -> {key: median} from fairness.sh's "median" lines
for mm in re.finditer(r"^median (\S+) (c8|c50) (.*)$", text("fairness"), re.M):
    fair[(mm.group(1), mm.group(2))] = {k: float(v) for k, v in re.findall(r"(\w+)=(\S+)", mm.group(3))}
ft, fu = fair.get(("drover-thread", "c8")), fair.get(("uwsgi-http11-threads", "c8"))
if ft and fu:
    row("WSGI hello p99 at c8 (a thread per client, like for like), drover thread / uWSGI http11 + threads",
        ft["p99"], fu["p99"], unit="ms", better="lower")
ft, fu = fair.get(("drover-thread", "c50")), fair.get(("uwsgi-http11-threads", "c50"))
if ft and fu:
    rows.append(("WSGI hello p99 at c50 over the requests completed, drover thread / uWSGI http11 + threads",
                 f"{ft['p99']:.2f} ms, {ft['served']:.0f}/50 connections served",
                 f"{fu['p99']:.2f} ms, {fu['served']:.0f}/50 connections served",
                 f"{ft['p99'] / fu['p99']:.2f} (uWSGI's covers {fu['served']:.0f} clients)"))

    def wait(d):
        un, n = d.get("unanswered", 0), d.get("n", 0)
        mx = d.get("max_ms")
        s = f"max {mx:.1f} ms" if mx == mx and mx is not None else "none answered"
        return s + (f", {un:.0f}/{n:.0f} unanswered in 3 s" if un else f", {n:.0f}/{n:.0f} answered")
    rows.append(("new client during c50 (one every 100 ms), wait: drover thread / uWSGI http11 + threads",
                 wait(ft), wait(fu), "fairness.sh"))
b = text("balance").strip().splitlines()
if b:
    rows.append(("thread model balance (balance.sh)", b[-1][:80], "", ""))

print()
print(f"Measured with `contrib/bench/all.sh{' --quick' if quick else ''}` (wrk {D} s per server; "
      f"{os.cpu_count()} cores, shared with other jobs while measured: read ratios, not absolutes).")
print()
print("| comparison | drover | peer | ratio |")
print("|---|---|---|---|")
for r_ in rows:
    print("| " + " | ".join(r_) + " |")
PY
