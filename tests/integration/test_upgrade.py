"""USR2 binary upgrade: the master re-executes its binary, passing the listen
sockets as LISTEN_FDS; the new master's workers accept, then the old master
drains and exits (or waits for WINCH then QUIT with upgrade_handover =
manual).  Under a background load nothing may fail or be reset; a new
binary that cannot start leaves the old master serving."""
import os
import shutil
import signal
import subprocess
import time

import pytest

import conftest
from conftest import DROVER_BIN, HELLO_SO, Load, free_port, get, pid_alive, wait_until
from test_notify import Notify
from upgrade_util import KeepAliveLoad, Masters, exe_ino, read_pid, wait_gone

HELLO = "so:" + HELLO_SO


@pytest.fixture
def masters():
    m = Masters()
    yield m
    m.cleanup()


def ctl_status(pidfile):
    """`drover ctl status --json` with the build's binary (a test may move
    the one drover runs from)."""
    p = subprocess.run([DROVER_BIN, "ctl", "--pidfile", pidfile, "--json", "status"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return p.stdout


def usr2(d, masters):
    """USR2 to d's master: (new master pid, t0).  Waits for the pidfile to
    name the new master while the old one's is PIDFILE.oldbin."""
    old = d.pid
    t0 = time.monotonic()
    d.signal(signal.SIGUSR2)
    oldbin = d.pidfile + ".oldbin"
    wait_until(lambda: read_pid(oldbin) == old, 10, ".oldbin pidfile")
    new = wait_until(lambda: (p := read_pid(d.pidfile)) not in (0, old) and p, 15,
                     "the new master's pidfile")
    masters.track(new)
    return new, t0


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_usr2_under_load(drover, masters, model):
    mport = free_port()
    d = drover(HELLO, "-w", "2", "-k", model, "--metrics-bind", f"127.0.0.1:{mport}")
    # connection per request, and (thread, event) keep-alive clients too
    ka = KeepAliveLoad(d.port, threads=2 if model != "sync" else 0)
    with Load(d.url, threads=2) as load, ka:
        new, t0 = usr2(d, masters)
        # both run: the old pidfile is PIDFILE.oldbin until the old master exits
        assert pid_alive(d.pid) and pid_alive(new)
        assert d.wait_exit(20) == 0
        handover = time.monotonic() - t0
        ok_at_exit = load.ok
        wait_until(lambda: load.ok > ok_at_exit + 20, 10, "requests after the hand-over")
    print(f"\nUSR2 {model}: hand-over {handover:.2f} s (USR2 to old master's exit), "
          f"{load.ok} requests, {len(load.failures)} failed; keep-alive: {ka.ok} requests, "
          f"{len(ka.failures)} failed, {ka.retried} retried, {ka.reconnects} connections")
    assert load.failures == [] and ka.failures == []
    assert not os.path.exists(d.pidfile + ".oldbin")
    assert read_pid(d.pidfile) == new
    assert len(masters.workers(new)) == 2
    assert f'"pid":{new}' in ctl_status(d.pidfile).replace(" ", "")
    # the metrics listener was passed on too, not bound again
    st, _, body = get(f"http://127.0.0.1:{mport}/status.json")
    assert st == 200 and f'"pid":{new}' in body.decode().replace(" ", "")
    log = d.log()
    assert "with 1 sockets and the metrics listener" in log
    assert "running without it" not in log
    assert "all 2 workers accepting: the old master" in log
    assert f"new master (pid {new}) serving after" in log
    os.kill(new, signal.SIGTERM)
    wait_gone(new)
    assert not os.path.exists(d.pidfile)


def test_usr2_manual_winch_quit_and_second_usr2_refused(drover, masters):
    d = drover(HELLO, "-w", "2", "--upgrade-handover", "manual")
    old_workers = d.wait_workers(2)
    with Load(d.url, threads=2) as load:
        new, t0 = usr2(d, masters)
        d.signal(signal.SIGUSR2)  # a second one during the hand-over
        d.wait_log(r"USR2 refused: a hand-over to the new master \(pid %d\)" % new, 10)
        d.wait_log(r"new master \(pid %d\) serving after .* beside this one" % new, 15)
        # both serve: the old keeps its workers until WINCH
        assert sorted(masters.workers(d.pid, but=(new,))) == sorted(old_workers)
        assert read_pid(d.pidfile + ".oldbin") == d.pid
        d.signal(signal.SIGWINCH)
        wait_until(lambda: masters.workers(d.pid, but=(new,)) == [], 15,
                   "the old master's workers to stop")
        assert d.alive()
        d.signal(signal.SIGQUIT)
        assert d.wait_exit(15) == 0
        ok_at_exit = load.ok
        wait_until(lambda: load.ok > ok_at_exit + 10, 10, "requests after QUIT")
    print(f"\nUSR2 manual: {load.ok} requests, {len(load.failures)} failed")
    assert load.failures == []
    assert read_pid(d.pidfile) == new and not os.path.exists(d.pidfile + ".oldbin")
    assert f'"pid":{new}' in ctl_status(d.pidfile).replace(" ", "")


def failed_upgrade_leaves_old(d, masters, why):
    """USR2 that must fail: the old master keeps serving, its pidfile back."""
    old = d.pid
    mark = d.log_mark()
    d.signal(signal.SIGUSR2)
    m = d.wait_log(r"USR2 failed: the new master \(pid (\d+)\) (.*) before its workers "
                   r"accepted; this master \(pid %d\) keeps serving" % old, 20, since=mark)
    assert why in m.group(2), m.group(0)
    masters.track(int(m.group(1)))
    assert d.alive()
    wait_until(lambda: read_pid(d.pidfile) == old, 5, "the pidfile back")
    assert not os.path.exists(d.pidfile + ".oldbin")
    assert get(d.url + "/")[0] == 200
    assert f'"pid":{old}' in ctl_status(d.pidfile).replace(" ", "")
    return m


def test_usr2_bad_config_keeps_old_serving(drover, masters):
    d = drover(HELLO, "-w", "1", config="[server]\nworkers = 1\n")
    with Load(d.url, threads=2) as load:
        with open(d.config_path, "w") as f:
            f.write("[server]\nworkers = many\n")
        failed_upgrade_leaves_old(d, masters, "status 2 (bad flags or configuration)")
    assert load.failures == []
    # fixed, a USR2 goes through
    with open(d.config_path, "w") as f:
        f.write("[server]\nworkers = 1\n")
    new, _ = usr2(d, masters)
    assert d.wait_exit(20) == 0
    assert get(d.url + "/")[0] == 200


def test_usr2_app_that_cannot_load_keeps_old_serving(drover, masters, tmp_path):
    app = tmp_path / "app.so"
    shutil.copy(HELLO_SO, app)
    d = drover("so:" + str(app), "-w", "1")
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"not an ELF file\n")
    os.replace(broken, app)  # a new inode: the running workers keep their mapping
    with Load(d.url, threads=2) as load:
        failed_upgrade_leaves_old(d, masters, "status 4 (the app cannot be loaded)")
    assert load.failures == []


def test_usr2_runs_the_replaced_binary_and_survives_a_missing_one(drover, masters, tmp_path,
                                                                   monkeypatch):
    exe = tmp_path / "drover"
    shutil.copy(DROVER_BIN, exe)
    monkeypatch.setattr(conftest, "DROVER_BIN", str(exe))
    d = drover(HELLO, "-w", "1")
    os.remove(exe)
    m = failed_upgrade_leaves_old(d, masters, "status 127")
    assert "USR2: cannot execute %s: No such file or directory" % exe in d.log()
    # the operator installs the new binary under the same name
    shutil.copy(DROVER_BIN, str(exe) + ".tmp")
    os.replace(str(exe) + ".tmp", exe)
    new, _ = usr2(d, masters)
    assert d.wait_exit(20) == 0
    assert exe_ino(new) == os.stat(exe).st_ino
    assert get(d.url + "/")[0] == 200
    del m


def test_usr2_notify_mainpid_and_watchdog(drover, masters, tmp_path):
    n = Notify(str(tmp_path / "notify.sock"))
    try:
        d = drover(HELLO, "-w", "1", env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
        n.wait(lambda m: m.get("READY") == "1", what="READY=1")
        new, _ = usr2(d, masters)
        n.wait(lambda m: m.get("MAINPID") == str(new), what=f"MAINPID={new}")
        assert d.wait_exit(20) == 0
        # no STOPPING=1 from the old master: the service goes on
        assert not [m for _, m in n.msgs if m.get("STOPPING") == "1"]
        d.wait_log(r"\[%d\] \[INFO\] systemd watchdog: feeding every 0\.200 s" % new)
        n.msgs.clear()
        wait_until(lambda: n.drain() or
                   sum(1 for _, m in n.msgs if m.get("WATCHDOG") == "1") >= 3, 5,
                   "the new master's watchdog pings")
        os.kill(new, signal.SIGTERM)
        n.wait(lambda m: m.get("STOPPING") == "1", what="STOPPING=1 from the new master")
        wait_gone(new)
    finally:
        n.close()


SLOW_BOOT_APP = """
import os, time
if os.path.exists(os.environ["SLOW_FLAG"]):
    time.sleep(60)  # a new master whose workers never get ready

def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def test_usr2_new_master_never_ready_is_stopped(drover, masters, tmp_path):
    (tmp_path / "slowboot.py").write_text(SLOW_BOOT_APP)
    flag = tmp_path / "slow"
    d = drover("slowboot:app", "-w", "1", "--upgrade-timeout", "1", "--graceful-timeout", "1",
               cwd=str(tmp_path), env={"SLOW_FLAG": str(flag)})
    flag.write_text("")
    with Load(d.url, threads=2) as load:
        m = failed_upgrade_leaves_old(d, masters, "")
        assert "is not ready after 1 s (upgrade_timeout); stopping it" in d.log()
    assert load.failures == []
    del m


def test_usr2_twice_in_a_row(drover, masters):
    """The new master can itself be upgraded once the old one is gone."""
    d = drover(HELLO, "-w", "1")
    with Load(d.url, threads=2) as load:
        second, _ = usr2(d, masters)
        assert d.wait_exit(20) == 0
        d.wait_log(r"\[%d\] \[INFO\] all 1 workers accepting" % second, 10)
        os.kill(second, signal.SIGUSR2)
        wait_until(lambda: read_pid(d.pidfile + ".oldbin") == second, 10, "second .oldbin")
        third = wait_until(lambda: (p := read_pid(d.pidfile)) not in (0, second) and p, 15,
                           "the third master")
        masters.track(third)
        wait_gone(second, 20)
        ok = load.ok
        wait_until(lambda: load.ok > ok + 10, 10, "requests after the second hand-over")
    assert load.failures == []
    assert f'"pid":{third}' in ctl_status(d.pidfile).replace(" ", "")


def test_usr2_keeps_a_unix_socket_file(drover, masters, tmp_path):
    """The old master must not unlink the socket file it hands over."""
    path = str(tmp_path / "app.sock")
    d = drover(HELLO, "-w", "1", "-b", "unix:" + path)
    req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    new, _ = usr2(d, masters)
    assert d.wait_exit(20) == 0
    assert os.path.exists(path)
    assert d.http(req).startswith(b"HTTP/1.1 200")
    assert f'"pid":{new}' in ctl_status(d.pidfile).replace(" ", "")
