"""Replacing a worker (`drover ctl recycle PID`): its successor is accepting
before the old worker is told to drain, so a one-worker pool under load never
has nobody accepting and no request fails.  Also `drover ctl --help` (from the
control command table) and `--control PATH`."""
import json
import os
import re
import subprocess

from conftest import DROVER_BIN, HELLO_SO, Load, wait_until

HELLO = "so:" + HELLO_SO


def ctl(*args, timeout=10):
    p = subprocess.run([DROVER_BIN, "ctl", *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_recycle_one_worker_under_load_successor_first(drover):
    d = drover(HELLO, "-w", "1")
    path = os.path.join(d.dir, "drover.ctl")
    [old] = d.wait_workers(1)
    with Load(d.url + "/?sleep=5", threads=3, timeout=10, min_ok=10, join=15) as load:
        mark = d.log_mark()
        rc, out, err = ctl("--control", path, "--json", "recycle", str(old))
        assert rc == 0 and json.loads(out) == {"ok": True, "recycled": old}, (out, err)
        # Watch the scoreboard through the transition: whenever the old worker
        # is stopping, its successor is already past booting.
        seen = []

        def replaced():
            rc, out, _ = ctl("--control", path, "--json", "status")
            if rc == 0:
                seen.append({w["pid"]: w["state"] for w in json.loads(out)["workers"]})
            ws = d.workers()
            return len(ws) == 1 and ws[0] != old
        wait_until(replaced, 15, "the replacement alone")
        n = load.ok
        wait_until(lambda: load.ok > n + 10, 10, "load served by the replacement")
    assert load.failures == [], load.failures
    [new] = d.workers()
    # the old pid leaves the process list (a zombie) before the master reaps it and logs
    d.wait_log(r"worker \d+ \(pid %d\) (exited|stopped)" % old, since=mark)
    log = d.log()[mark:]
    boot = re.search(r"booting worker \d+ \(pid %d\)" % new, log)
    drain = re.search(r"worker \d+ \(pid %d\) accepting: draining worker \d+ \(pid %d\)"
                      % (new, old), log)
    gone = re.search(r"worker \d+ \(pid %d\) (exited|stopped)" % old, log)
    assert boot and drain and gone, log
    assert boot.start() < drain.start() < gone.start(), log
    for states in seen:
        if states.get(old) == "stopping":
            assert states.get(new) in ("idle", "busy"), seen


def test_recycle_unknown_pid_and_help(drover):
    d = drover(HELLO, "-w", "1")
    path = os.path.join(d.dir, "drover.ctl")
    rc, _, err = ctl("--control", path, "recycle", "1")
    assert rc == 1 and "no live worker" in err
    rc, out, _ = ctl("--help")
    assert rc == 0 and "--control PATH" in out
    for cmd in ("status [table]", "workers N", "recycle PID", "stop [fast]", "ping"):
        assert cmd in out, out
