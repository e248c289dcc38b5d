"""`drover doctor` names reproduced situations (issue 10 parts 5-7): an event
loop blocked by a C app, dozens of idle threads polling in short sleeps (and
the same diagnosis by --attach on a gunicorn serving that app), CPU-bound
workers far more than the CPUs they are pinned to with taskset; and a healthy
loaded pool gets no finding."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import APPS_DIR, BUILD, DROVER_BIN, free_port, get, kill_if_same, proc_stat, wait_until

BLOCKER = "so:" + os.path.join(BUILD, "tests", "blocker.so")
FAST = ["--sample-interval", "0.2"]


def doctor(d, *extra):
    r = subprocess.run([DROVER_BIN, "doctor", "--pidfile", d.pidfile, *extra],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout


def findings(d):
    return {f["kind"]: f for f in json.loads(doctor(d, "--json"))["doctor"]["findings"]}


class Load:
    """Client threads sending requests in a loop until stopped."""

    def __init__(self, url, n):
        self.stop = threading.Event()
        self.ts = [threading.Thread(target=self._run, args=(url,), daemon=True) for _ in range(n)]
        for t in self.ts:
            t.start()

    def _run(self, url):
        while not self.stop.is_set():
            try:
                get(url, timeout=5)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        for t in self.ts:
            t.join(10)


def test_blocked_event_loop(drover):
    mport = free_port()
    d = drover(BLOCKER, "-k", "event", "-w", "1", "--stall-threshold", "50ms",
               "--metrics-bind", str(mport), *FAST)
    load = Load(f"{d.url}/block?ms=150", 2)
    try:
        f = wait_until(lambda: findings(d).get("blocked_loop"), 20, "blocked_loop finding")
    finally:
        load.close()
    assert re.search(r"event loops stalled \d+\.\d% of the time; top blocking sites: "
                     r"resolve_host \((?:blocker\.c:\d+|blocker\.so\+0x[0-9a-f]+)\) \(100%\)",
                     f["evidence"]), f
    assert "off the loop" in f["change"] and "worker_class = thread" in f["change"]
    text = doctor(d)
    assert text.startswith("blocked_loop (for ") and "evidence: event loops stalled" in text
    d.wait_log(r"doctor: blocked_loop: event loops stalled")
    m = get(f"http://127.0.0.1:{mport}/metrics")[2].decode()
    assert 'drover_finding{kind="blocked_loop"} 1' in m
    assert 'drover_finding{kind="contention"} 0' in m
    # it clears once the loop runs freely again
    d.wait_log(r"doctor: blocked_loop cleared", timeout=15)


def test_polling_threads_contention(drover):
    d = drover("polling_threads:app", "-k", "thread", "-w", "2", "--threads", "4",
               "--pythonpath", APPS_DIR, *FAST, env={"POLLERS": "40"})
    f = wait_until(lambda: findings(d).get("contention"), 20, "contention finding")
    assert re.search(r"2 workers x up to \d+ threads make \d+ voluntary switches/s", f["evidence"]), f
    assert "threads = " in f["change"] and "poll" in f["change"]


def test_healthy_loaded_pool_has_no_finding(drover):
    d = drover("so:" + os.path.join(BUILD, "contrib", "hello.so"), "-w", "2", *FAST)
    load = Load(d.url + "/", 2)
    try:
        # enough passes for any finding to pass its hold-off
        wait_until(lambda: json.loads(doctor(d, "--json"))["doctor"]["samples"] >= 8, 20,
                   "8 doctor samples under load")
        got = findings(d)
    finally:
        load.close()
    host_wide = {"oversubscription", "io_blocked", "memory_pressure"}
    if os.getloadavg()[0] > 2 * os.cpu_count():  # other tests load this machine
        got = {k: v for k, v in got.items() if k not in host_wide}
    assert got == {}, got
    assert "no finding" in doctor(d)


def test_cpu_oversubscription_taskset(drover):
    if not shutil.which("taskset"):
        pytest.skip("taskset not installed")
    d = drover(BLOCKER, "-w", "8", *FAST, wait=False)
    d.wait_ready()
    # every process of this pool on one CPU
    for pid in [d.pid] + d.workers():
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True,
                       capture_output=True)
    load = Load(f"{d.url}/spin?ms=50", 10)
    try:
        f = wait_until(lambda: findings(d).get("oversubscription"), 25, "oversubscription finding")
    finally:
        load.close()
    assert re.search(r"\d+ tasks runnable on [\d.]+ usable CPUs, \d+ involuntary switches/s",
                     f["evidence"]), f
    assert re.search(r"workers = \d+", f["change"])


def _answers(port):
    try:
        return get(f"http://127.0.0.1:{port}/", timeout=2)[0] == 200
    except OSError:
        return False


def _gunicorn():
    exe = shutil.which("gunicorn") or shutil.which("gunicorn3")
    return exe


def test_attach_gunicorn_contention(tmp_path):
    exe = _gunicorn()
    if not exe:
        pytest.skip("Debian's gunicorn is not installed")
    port = free_port()
    env = dict(os.environ, POLLERS="40", PYTHONPATH=APPS_DIR)
    g = subprocess.Popen([exe, "-w", "2", "-b", f"127.0.0.1:{port}", "polling_threads:app"],
                         cwd=APPS_DIR, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    st = proc_stat(g.pid)
    try:
        wait_until(lambda: _answers(port), 20, "gunicorn answering")
        r = subprocess.run([DROVER_BIN, "doctor", "--attach", str(g.pid), "--seconds", "5"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert re.search(r"^contention \(for \d+ s\)\n  evidence: 2 workers x up to \d+ threads",
                         r.stdout, re.M), r.stdout
        assert "attached: no scoreboard" in r.stdout
    finally:
        g.terminate()
        try:
            g.wait(10)
        except subprocess.TimeoutExpired:
            kill_if_same(g.pid, st[2] if st else None)
            g.wait(5)


def test_blocked_event_loop_python(drover):
    d = drover("stall_app:app", "-k", "event", "-w", "1", "--stall-threshold", "50ms",
               "--pythonpath", APPS_DIR, *FAST)
    load = Load(f"{d.url}/block?ms=150", 2)
    try:
        f = wait_until(lambda: findings(d).get("blocked_loop"), 20, "blocked_loop finding")
    finally:
        load.close()
    assert "resolve_host (stall_app.py:7) (100%)" in f["evidence"], f
    d.wait_log(r"stall \d+ ms in worker 1 \(pid \d+\) at resolve_host \(stall_app\.py:7\)")
    table = subprocess.run([DROVER_BIN, "ctl", "--pidfile", d.pidfile, "status"],
                           capture_output=True, text=True, timeout=10).stdout
    assert re.search(r"^stalls: \d+, [\d.]+ s in all; by blocking site:\n +\d+ +[\d.]+ s  "
                     r"resolve_host \(stall_app\.py:7\)$", table, re.M), table
