"""systemd socket activation, with tests/integration/activate.py as systemd:
it binds the sockets, keeps a copy in a holder process, and execs drover
with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES.  Sockets are matched to bind
entries by address or by name (fd:NAME); one that matches nothing is an
error; drover never unlinks systemd's unix sockets nor shuts them down."""
import os
import signal
import socket
import stat

import pytest

import conftest
from conftest import DROVER_BIN, HELLO_SO, REPO, Load, free_port, http, status_of, wait_until
from upgrade_util import Masters, read_pid, wait_gone

HELLO = "so:" + HELLO_SO
LAUNCHER = os.path.join(REPO, "tests", "integration", "activate.py")
REQ = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture
def masters():
    m = Masters()
    yield m
    m.cleanup()


@pytest.fixture
def activated(monkeypatch, tmp_path, masters):
    """drover(...) started through the launcher with the sockets of spec."""
    monkeypatch.setattr(conftest, "DROVER_BIN", LAUNCHER)
    holder = str(tmp_path / "holder.pid")

    def start(drover, spec, *args, hold=True, wait=True):
        env = {"TEST_ACTIVATE": spec, "TEST_DROVER": DROVER_BIN}
        if hold:
            env["TEST_HOLDER_PIDFILE"] = holder
        d = drover(HELLO, *args, env=env, wait=wait)
        if hold:
            masters.track(wait_until(lambda: read_pid(holder), 10, "the holder's pid"))
        return d
    return start


def still_listening(addr):
    """A connect succeeds (the holder's queue takes it): nobody shut the
    socket down."""
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(addr)
    return True


def test_activated_by_address_and_by_name(drover, activated, tmp_path):
    port, path = free_port(), str(tmp_path / "api.sock")
    d = activated(drover, f"tcp:127.0.0.1:{port}=web;unix:{path}=api", "-w", "1",
                  "-b", f"127.0.0.1:{port}", "-b", "fd:api")
    assert f"listening at 127.0.0.1:{port} (fd 3)" in d.log()
    assert "listening at fd:api (fd 4)" in d.log()
    assert status_of(http(port, REQ)) == 200
    assert status_of(http(path, REQ)) == 200
    worker = d.wait_workers(1)[0]
    with open(f"/proc/{worker}/environ", "rb") as f:
        assert b"LISTEN_FDS" not in f.read()
    assert d.stop() == 0
    # systemd's sockets: the file stays, and the socket still listens
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert still_listening(path) and still_listening(("127.0.0.1", port))


def test_activated_socket_matching_no_bind_is_an_error(drover, activated, tmp_path):
    port, other = free_port(), free_port()
    d = activated(drover, f"tcp:127.0.0.1:{port}=web;tcp:127.0.0.1:{other}=extra", "-w", "1",
                  "-b", f"127.0.0.1:{port}", hold=False, wait=False)
    assert d.wait_exit(10) == 1
    assert f"passed socket 4 (name extra, 127.0.0.1:{other}) matches no bind entry" in d.log()


def test_bind_by_unknown_name_is_an_error(drover, activated):
    port = free_port()
    d = activated(drover, f"tcp:127.0.0.1:{port}=web", "-w", "1", "-b", f"127.0.0.1:{port}",
                  "-b", "fd:nope", hold=False, wait=False)
    assert d.wait_exit(10) == 1
    assert "cannot listen on fd:nope: no socket of that name was passed" in d.log()


def test_usr2_with_activated_sockets(drover, activated, masters, tmp_path):
    port, path = free_port(), str(tmp_path / "api.sock")
    d = activated(drover, f"tcp:127.0.0.1:{port}=web;unix:{path}=api", "-w", "2",
                  "-b", f"127.0.0.1:{port}", "-b", "fd:api")
    with Load(d.url, threads=2) as load:
        d.signal(signal.SIGUSR2)
        new = wait_until(lambda: (p := read_pid(d.pidfile)) not in (0, d.pid) and p, 15,
                         "the new master")
        masters.track(new)
        assert d.wait_exit(20) == 0
        ok = load.ok
        wait_until(lambda: load.ok > ok + 10, 10, "requests after the hand-over")
    assert load.failures == []
    assert status_of(http(path, REQ)) == 200
    os.kill(new, signal.SIGTERM)
    wait_gone(new)
    # the new master knew them for systemd's too
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert still_listening(path) and still_listening(("127.0.0.1", port))


def test_shipped_units_fit_together():
    import configparser

    def unit(name):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str
        cp.read(os.path.join(REPO, "contrib", "systemd", name))
        return cp
    svc, sock = unit("drover.service"), unit("drover.socket")
    s = svc["Service"]
    assert s["Type"] == "notify-reload" and s["NotifyAccess"] == "main"
    assert s["KillMode"] == "mixed" and int(s["WatchdogSec"]) > 0
    listen = sock["Socket"]["ListenStream"]
    assert f"-b {listen} " in s["ExecStart"]  # matched by address
    assert "drover.socket" in svc["Unit"]["Wants"]
