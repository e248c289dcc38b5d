#!/usr/bin/python3
"""Stall-report latency: how long after a request blocks its thread does the
watchdog's report reach the log?  A worker runs tests' blocker.so; each round
blocks the event loop (or a request thread) for 400 ms; the report line says
"stall N ms": N is the stall's age when the line was written, so N minus the
threshold is the report latency.  The issue's bound: threshold + 50 ms.
usage: contrib/bench/stall_latency.py [BUILD_DIR] [ROUNDS] [MODEL] [THRESHOLD_MS]"""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
model = sys.argv[3] if len(sys.argv) > 3 else "event"
thr = int(sys.argv[4]) if len(sys.argv) > 4 else 100
port = 8191
tmp = tempfile.mkdtemp()
log = os.path.join(tmp, "err.log")
opt = "--stall-threshold" if model == "event" else "--slow-request"
master = subprocess.Popen(
    [f"{build}/supervisor/drover", "-w", "1", "-k", model, "-b", f"127.0.0.1:{port}",
     "--pidfile", os.path.join(tmp, "pid"), opt, f"{thr}ms", "--stall-log-interval", "0",
     "--error-log", log, f"so:{build}/tests/blocker.so"])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    deadline = time.time() + 10
    while True:
        try:
            opener.open(f"http://127.0.0.1:{port}/", timeout=1).read()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    for _ in range(rounds):
        opener.open(f"http://127.0.0.1:{port}/block?ms=400", timeout=10).read()
    time.sleep(0.2)
finally:
    master.terminate()
    master.wait(10)
ages = [int(m) for m in re.findall(r"\] stall (\d+) ms in worker", open(log).read())]
lat = sorted(a - thr for a in ages)
if len(lat) != rounds:
    sys.exit(f"{len(lat)} reports for {rounds} stalls")
print(f"{model}, threshold {thr} ms, {rounds} stalls of 400 ms: report latency past the "
      f"threshold min {lat[0]} ms, median {lat[len(lat) // 2]} ms, "
      f"p90 {lat[int(len(lat) * 0.9)]} ms, max {lat[-1]} ms (bound: 50 ms)")
sys.exit(0 if lat[-1] <= 50 else 1)
