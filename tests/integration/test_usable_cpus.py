"""Issue 10 gaps b and c: usable CPUs follow the workers' CPU affinity
(`taskset -c 0` gives 1.0 whatever the host has), and `drover doctor
--attach PID` reads the cgroup of PID, not drover's own: a CPU-bound process
in a cgroup limited to 0.05 CPU is named cpu_throttled with that quota while
drover itself runs unlimited."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import BUILD, DROVER_BIN, free_port, get, wait_until


HELLO = "so:" + os.path.join(BUILD, "contrib", "hello.so")


def status(port):
    return json.loads(get(f"http://127.0.0.1:{port}/status.json")[2])


@pytest.mark.skipif(not shutil.which("taskset"), reason="taskset not installed")
def test_taskset_one_cpu_is_one_usable_cpu(drover):
    mport = free_port()
    d = drover(HELLO, "-w", "2", "--metrics-bind", str(mport), "--sample-interval", "0.2",
               wait=False)
    d.wait_ready()
    before = wait_until(lambda: status(mport)["host"].get("affinity_cpus") or None, 10,
                        "affinity counted")
    assert before == len(os.sched_getaffinity(0)) or before >= 1
    for pid in [d.pid] + d.workers():
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True,
                       capture_output=True)
    h = wait_until(lambda: (lambda h: h if h["effective_cpus"] == 1.0 else None)(
        status(mport)["host"]), 10, "1 usable CPU after taskset -c 0")
    assert h["affinity_cpus"] == 1
    table = subprocess.run([DROVER_BIN, "ctl", "--pidfile", d.pidfile, "status"],
                           capture_output=True, text=True, timeout=10).stdout
    assert "1.00 usable" in table, table


def make_cgroup(quota_us):
    """A new group limited to quota_us per 100 ms (v1, or v2), or skip."""
    name = f"drover-test-cpus-{os.getpid()}"
    try:
        if os.path.exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
            d = os.path.join("/sys/fs/cgroup/cpu", name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(quota_us))
            return d
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            d = os.path.join("/sys/fs/cgroup", name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write(f"{quota_us} 100000")
            return d
    except OSError as e:
        pytest.skip(f"cannot make a CPU-limited cgroup: {e}")
    pytest.skip("no cgroup cpu controller mounted")


def test_attach_reads_the_targets_cgroup():
    # 0.05 CPU: throttled even when other tests leave it little CPU
    cg = make_cgroup(5000)
    procs = os.path.join(cg, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=enter)
    try:
        r = subprocess.run([DROVER_BIN, "doctor", "--attach", str(burner.pid), "--seconds", "5",
                            "--json"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        fs = {f["kind"]: f for f in json.loads(r.stdout)["findings"]}
        f = fs.get("cpu_throttled")
        assert f, (r.stdout, r.stderr)
        assert f["evidence"].startswith("CPU quota 0.05 CPUs; "), f
        assert f["change"].startswith("workers = 1 (fits the quota)"), f
    finally:
        burner.send_signal(signal.SIGKILL)
        burner.wait(10)
        wait_until(lambda: not open(procs).read().strip(), 10, "the cgroup empty")
        os.rmdir(cg)
