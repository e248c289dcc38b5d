#!/usr/bin/python3
"""Autoscaling against fixed pools under a stepped open-loop load.

    contrib/bench/autoscale_bench.py [--schedule 40:10s,160:20s,40:20s] [--build build]

Runs the 50 ms sleep app (tests/integration/apps/autoscale_app.py, sync
model, preloaded) three times: autoscaled from 1 worker, fixed at the peak's
Little's-law count, fixed at the trough's.  For each: p99 latency over the
whole run, failed requests (errors + timeouts) and worker-seconds (live
workers integrated over the run, from /status.json every 0.2 s).  Prints a
Markdown table (the README's tuning section has one)."""
import argparse
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(mport):
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/status.json", timeout=5) as r:
        return json.load(r)


def run_one(binary, args, schedule):
    port, mport = free_port(), free_port()
    cmd = [binary, "--preload", "-b", f"127.0.0.1:{port}", "--metrics-bind", f"127.0.0.1:{mport}",
           "--sample-interval", "0.5", *args, "autoscale_app:sleep"]
    log = open(os.devnull, "wb")
    p = subprocess.Popen(cmd, cwd=os.path.join(REPO, "tests", "integration", "apps"),
                         stdout=log, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if status(mport)["master"]["ready"] >= 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("drover did not start")
            time.sleep(0.1)
        samples, stop = [], []

        def watch():
            while not stop:
                try:
                    samples.append((time.monotonic(), status(mport)["master"]["live"]))
                except OSError:
                    pass
                time.sleep(0.2)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        out = subprocess.run([sys.executable, os.path.join(HERE, "loadgen.py"),
                              f"127.0.0.1:{port}", "--schedule", schedule, "--json"],
                             capture_output=True, text=True, check=True).stdout
        stop.append(1)
        t.join()
        ws = sum((b[0] - a[0]) * a[1] for a, b in zip(samples, samples[1:]))
        res = json.loads(out)
        return res, ws, max(n for _, n in samples)
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
        run_one.last_log = err.decode(errors="replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schedule", default="40:10s,160:20s,40:20s")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--log", help="write the autoscaled run's decisions here")
    a = ap.parse_args()
    binary = os.path.join(a.build, "supervisor", "drover")
    rates = [float(p.split(":")[0]) for p in a.schedule.split(",")]
    need = lambda r: math.ceil(r * 0.05 / 0.7)  # noqa: E731 - Little's law, W = 50 ms
    runs = [
        ("autoscale (from 1)", ["-w", "1", "--autoscale", "--max-workers", "32",
                                "--scale-down-cooldown", "5"]),
        (f"fixed peak ({need(max(rates))})", ["-w", str(need(max(rates)))]),
        (f"fixed trough ({need(min(rates))})", ["-w", str(need(min(rates)))]),
    ]
    print(f"schedule {a.schedule}, 50 ms sleep app, sync workers\n")
    print("| pool | p99 ms | p95 ms | failed | worker-seconds | most workers |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, args in runs:
        res, ws, most = run_one(binary, args, a.schedule)
        t = res["total"]
        print(f"| {name} | {t['p99_ms']:.0f} | {t['p95_ms']:.0f} | {t['errors'] + t['timeouts']} "
              f"| {ws:.0f} | {most} |", flush=True)
        if a.log and "autoscale" in name:
            with open(a.log, "w") as f:
                f.write("".join(l + "\n" for l in run_one.last_log.splitlines()
                                if "scale " in l or "autoscale" in l))


if __name__ == "__main__":
    main()
