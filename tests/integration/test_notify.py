"""sd_notify: the test is systemd.  NOTIFY_SOCKET points at a unix datagram
socket of ours; READY=1 comes once a worker accepts, STATUS= lines follow,
RELOADING=1 with MONOTONIC_USEC then READY=1 on HUP, STOPPING=1 on TERM, and
WATCHDOG=1 every WATCHDOG_USEC/2."""
import signal
import socket
import time

import pytest

from conftest import HELLO_SO, wait_until

HELLO = "so:" + HELLO_SO


class Notify:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.msgs = []  # (monotonic time, {key: value})

    def drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            kv = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.msgs.append((time.monotonic(), kv))

    def wait(self, pred, timeout=10, what="message"):
        def found():
            self.drain()
            return [m for _, m in self.msgs if pred(m)]
        return wait_until(found, timeout, what)

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = Notify(str(tmp_path / "notify.sock"))
    yield n
    n.close()


def test_ready_status_reload_stop(drover, notify):
    d = drover(HELLO, "-w", "2", "--sample-interval", "0.2",
               env={"NOTIFY_SOCKET": notify.path})
    ready = notify.wait(lambda m: m.get("READY") == "1", what="READY=1")
    assert len(ready) == 1
    notify.wait(lambda m: "workers ready" in m.get("STATUS", ""), what="STATUS")
    notify.msgs.clear()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
    d.signal(signal.SIGHUP)
    rel = notify.wait(lambda m: m.get("RELOADING") == "1", what="RELOADING=1")[0]
    assert abs(int(rel["MONOTONIC_USEC"]) - t0) < 5e6
    notify.wait(lambda m: m.get("READY") == "1", what="READY=1 after reload")
    order = [k for _, m in notify.msgs for k in m if k in ("RELOADING", "READY")]
    assert order.index("RELOADING") < order.index("READY")
    d.signal(signal.SIGTERM)
    notify.wait(lambda m: m.get("STOPPING") == "1", what="STOPPING=1")
    assert d.wait_exit(10) == 0


def test_watchdog(drover, notify):
    d = drover(HELLO, "-w", "1", env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"})
    d.wait_log(r"systemd watchdog: feeding every 0\.100 s")
    pings = notify.wait(lambda m: m.get("WATCHDOG") == "1", what="WATCHDOG=1")
    wait_until(lambda: notify.drain() or
               sum(1 for _, m in notify.msgs if m.get("WATCHDOG") == "1") >= 8, 5, "8 pings")
    times = [t for t, m in notify.msgs if m.get("WATCHDOG") == "1"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert pings and max(gaps) < 0.5  # every 0.1 s, with slack for a loaded host


def test_no_watchdog_without_usec_and_not_for_other_pid(drover, notify):
    d = drover(HELLO, "-w", "1", env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000",
                                      "WATCHDOG_PID": "1"})
    notify.wait(lambda m: m.get("READY") == "1", what="READY=1")
    time_end = time.monotonic() + 0.5
    wait_until(lambda: time.monotonic() > time_end, 2, "half a second")
    notify.drain()
    assert not [m for _, m in notify.msgs if "WATCHDOG" in m]
    assert "systemd watchdog" not in d.log()


def test_notify_socket_gone_does_not_disturb(drover, tmp_path):
    d = drover(HELLO, "-w", "1", env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    d.signal(signal.SIGHUP)
    d.wait_log(r"reloading: generation 1")
    assert d.alive() and d.stop() == 0
