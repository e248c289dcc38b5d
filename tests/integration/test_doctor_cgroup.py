"""`drover doctor` names CPU quota throttling: drover runs in a cgroup made
for the test with a CFS quota of 0.2 CPU (v1 under /sys/fs/cgroup/cpu/, or v2
where that is what is mounted), its workers burn CPU, and the finding gives
the quota, the share of periods throttled and a worker count that fits.
Skipped with the reason where the kernel or the privileges refuse."""
import json
import os
import signal
import subprocess
import tempfile
import threading

import pytest

from conftest import BUILD, DROVER_BIN, children_of, free_port, get, kill_if_same, proc_stat, wait_until

BLOCKER = "so:" + os.path.join(BUILD, "tests", "blocker.so")


def make_cgroup():
    """(dir, procs file) of a new group limited to 0.2 CPU, or skip."""
    name = f"drover-test-{os.getpid()}"
    v1 = "/sys/fs/cgroup/cpu"
    try:
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            d = os.path.join(v1, name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write("20000")
            return d
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            d = os.path.join("/sys/fs/cgroup", name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write("20000 100000")
            return d
    except OSError as e:
        pytest.skip(f"cannot make a CPU-limited cgroup: {e}")
    pytest.skip("no cgroup cpu controller mounted")


def test_cpu_quota_throttling():
    cg = make_cgroup()
    tmp = tempfile.mkdtemp()
    pidfile = os.path.join(tmp, "drover.pid")
    port = free_port()
    procs = os.path.join(cg, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    err = open(os.path.join(tmp, "err.log"), "wb")
    m = subprocess.Popen([DROVER_BIN, "-b", f"127.0.0.1:{port}", "--pidfile", pidfile, "-w", "2",
                          "--sample-interval", "0.2", BLOCKER],
                         preexec_fn=enter, stdout=subprocess.DEVNULL, stderr=err)
    seen = {m.pid: proc_stat(m.pid)}
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                get(f"http://127.0.0.1:{port}/spin?ms=30", timeout=5)
            except OSError:
                pass

    ts = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    try:
        wait_until(lambda: os.path.exists(pidfile) and len(children_of(m.pid)) == 2, 15,
                   "drover and 2 workers")
        for p in children_of(m.pid):
            seen[p] = proc_stat(p)
        for t in ts:
            t.start()

        def finding():
            r = subprocess.run([DROVER_BIN, "doctor", "--json", "--pidfile", pidfile],
                               capture_output=True, text=True, timeout=10)
            fs = json.loads(r.stdout)["doctor"]["findings"] if r.returncode == 0 else []
            return next((f for f in fs if f["kind"] == "cpu_throttled"), None)
        f = wait_until(finding, 25, "cpu_throttled finding")
        assert f["evidence"].startswith("CPU quota 0.20 CPUs; "), f
        assert "of CFS periods throttled" in f["evidence"]
        assert f["change"].startswith("workers = 1 (fits the quota)"), f
    finally:
        stop.set()
        for t in ts:
            t.join(10)
        m.send_signal(signal.SIGTERM)
        try:
            m.wait(15)
        except subprocess.TimeoutExpired:
            pass
        for p, st in seen.items():
            if st:
                kill_if_same(p, st[2])
        m.wait(5)
        err.close()
        wait_until(lambda: not open(procs).read().strip(), 10, "the cgroup empty")
        os.rmdir(cg)
