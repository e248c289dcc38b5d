#!/usr/bin/python3
"""RSS and throughput over time with memory recycling off and on, for the
fragmenting C app and the fragmenting Python app (contrib/examples/fragment.*)
under steady load: two client threads send GET / and a third, every 1.5 s, a
burst (/grow with a random size) that leaves a worker's heap fragmented at its
high-water mark.  Off, each worker's RSS ratchets up to its largest burst and
stays; on (rss_growth_limit), drover trims, then recycles gracefully.
Prints a table per second-bucket summary and writes memory.png (matplotlib,
Debian python3-matplotlib) when available.
usage: contrib/bench/memory.py [BUILD_DIR] [SECONDS] [OUT_DIR]"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
out_dir = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else ".")
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = {
    "C": ([f"so:{build}/contrib/fragment.so"], lambda r: f"/grow?mb={r.randint(8, 64)}"),
    "Python": (["--chdir", f"{repo}/contrib/examples", "fragment:app"],
               lambda r: f"/grow?n={r.randint(200000, 1600000)}"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        r.read()
        return r.status


def run(app, recycle):
    args, grow = APPS[app]
    port, mport = free_port(), free_port()
    tmp = tempfile.mkdtemp()
    cmd = [f"{build}/supervisor/drover", "-w", "2", "-b", f"127.0.0.1:{port}",
           "--metrics-bind", str(mport), "--pidfile", f"{tmp}/drover.pid",
           "--log-level", "warning", "--recycle-warmup", "0.5", "--smaps-interval", "0.25",
           "--sample-interval", "0.25", "--heap-sample-interval", "0.25"]
    if recycle:
        cmd += ["--rss-growth-limit", "32M"]
    master = subprocess.Popen(cmd + args, stderr=open(f"{tmp}/err.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                get(base + "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        while not all(w["memory"]["baseline_kb"] for w in json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{mport}/status.json", timeout=10).read())["workers"]):
            time.sleep(0.1)  # the baselines are taken before the load
        ok, fail, halt = [0], [0], threading.Event()

        def load():
            while not halt.is_set():
                try:
                    get(base + "/")
                    ok[0] += 1
                except OSError:
                    fail[0] += 1

        def bursts():
            r = random.Random(1)
            while not halt.wait(1.5):
                try:
                    get(base + grow(r))
                    ok[0] += 1
                except OSError:
                    fail[0] += 1
        ts = [threading.Thread(target=load, daemon=True) for i in range(2)]
        ts.append(threading.Thread(target=bursts, daemon=True))
        for t in ts:
            t.start()
        rows, t0, last_ok = [], time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            st = json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{mport}/status.json", timeout=10).read())
            rss = sum((w.get("anonymous_kb") or 0) for w in st["workers"]) / 1024
            rows.append((time.monotonic() - t0, rss, ok[0] - last_ok))
            last_ok = ok[0]
        halt.set()
        for t in ts:
            t.join(30)
        log = open(f"{tmp}/err.log").read()
        return rows, fail[0], log.count("recycling"), log.count("malloc_trim returned")
    finally:
        master.terminate()
        master.wait(30)


def main():
    results = {}
    for app in APPS:
        for recycle in (False, True):
            results[(app, recycle)] = run(app, recycle)
    print(f"{'app':7} {'recycling':9} {'RSS MB mean':>11} {'max':>6} {'last':>6} "
          f"{'req/s mean':>10} {'min':>6} {'failed':>6} {'trims':>5} {'recycles':>8}")
    for (app, recycle), (rows, fail, recycles, trims) in results.items():
        rss = [r[1] for r in rows]
        rps = [r[2] for r in rows[1:]] or [0]
        print(f"{app:7} {'on' if recycle else 'off':9} {sum(rss) / len(rss):11.0f} "
              f"{max(rss):6.0f} {rss[-1]:6.0f} {sum(rps) / len(rps):10.0f} {min(rps):6.0f} "
              f"{fail:6d} {trims:5d} {recycles:8d}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found (apt install python3-matplotlib): no plot")
        return
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), sharex=True)
    for col, app in enumerate(APPS):
        for recycle in (False, True):
            rows = results[(app, recycle)][0]
            lbl = "recycling on" if recycle else "off"
            axes[0][col].plot([r[0] for r in rows], [r[1] for r in rows], label=lbl)
            axes[1][col].plot([r[0] for r in rows], [r[2] for r in rows], label=lbl)
        axes[0][col].set_title(f"{app} fragmenting app, 2 workers")
        axes[0][col].set_ylabel("Anonymous RSS, MB (sum)")
        axes[1][col].set_ylabel("requests / s")
        axes[1][col].set_xlabel("seconds")
        axes[0][col].legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "memory.png")
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


main()
