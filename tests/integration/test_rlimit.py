"""Resource limits (issue 16, item 4).

- A worker out of fds (its soft RLIMIT_NOFILE lowered to what it holds, with
  prlimit) does not spin on accept(): little CPU over a second, at most one
  log line a second, a count in /metrics; it still serves the connections it
  holds, and accepts the queued ones once those close and free fds.  All
  three models.
- The master's control socket out of fds: the same (no spin, one line a
  second, counted), and it answers again once fds are back.
- At start the master raises its soft RLIMIT_NOFILE as far as needed, and
  warns, naming both figures, when the hard limit is too low.
"""
import os
import re
import resource
import socket
import subprocess
import time

import pytest

from conftest import free_port, get, wait_until
from large_io import BIGBODY_SO
from test_chaos import _server_side_sockets, held_client_ports

EMFILE_LINE = r"accept\([^)]*\): Too many open files"


def cpu_s(pid):
    """utime + stime of pid in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def connection_fds(pid, port):
    """fd numbers of pid's TCP connections to our port (not the listener)."""
    inodes = {ino for ino, _ in _server_side_sockets(port)}
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m and m.group(1) in inodes:
            out.add(int(fd))
    return out


def lowest_free_fd(pid, free=()):
    """The lowest fd number pid could get next, counting the fds in free as
    closed.  RLIMIT_NOFILE bounds fd numbers, not their count: a limit at
    this number leaves the process no fd to open."""
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")} - set(free)
    n = 0
    while n in used:
        n += 1
    return n


def set_soft_nofile(pid, soft):
    _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def metric(mport, name, **labels):
    """Sum of the samples of name whose labels include labels."""
    body = get(f"http://127.0.0.1:{mport}/metrics")[2].decode()
    total = 0.0
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % name, body, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def recv_all(s):
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            return data
        data += c


def no_spin(pid):
    """CPU seconds pid used over one second; fails if it looks like a spin."""
    t0, c0 = time.monotonic(), cpu_s(pid)
    time.sleep(1.0)  # the measurement window itself, not a synchronisation
    used = cpu_s(pid) - c0
    assert used < 0.25, f"{used:.2f} s of CPU in {time.monotonic() - t0:.2f} s: spinning"
    return used


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_worker_out_of_fds(drover, model):
    mport = free_port()
    d = drover("so:" + BIGBODY_SO, "-w", "1", "-k", model, "--metrics-bind",
               f"127.0.0.1:{mport}")
    w = d.workers()[0]
    # Connections the worker holds: heads begun, not finished (sync: one).
    nheld = 1 if model == "sync" else 3
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(nheld)]
    for s in held:
        s.sendall(b"GET /?size=10 HTTP/1.1\r\nHost: x\r\n")
    wait_until(lambda: len(held_client_ports(w, d.port)) == nheld, 5, "the held connections")
    # No fd number left for the worker (sync: none once its one connection
    # closes), then clients it cannot accept.
    conns = connection_fds(w, d.port) if model == "sync" else ()
    set_soft_nofile(w, lowest_free_fd(w, conns))
    mark = d.log_mark()
    t_out = time.monotonic()
    queued = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(3)]
    for s in queued:
        s.sendall(b"GET /?size=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    def out_of_fds():
        d.wait_log(EMFILE_LINE, 5, since=mark)
        used = no_spin(w)
        for s in queued:  # none of them got in
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
            s.setblocking(True)
        return used
    # sync: the worker serves its one connection before it tries to accept
    used = None if model == "sync" else out_of_fds()
    # The connections it has are still served; closing them frees fds.
    for s in held:
        s.sendall(b"Connection: close\r\n\r\n")
        assert recv_all(s).endswith(b"a" * 10)
        s.close()
    if model == "sync":
        # Its one connection closed, it is still one fd short: fds come
        # back when the limit is raised.
        used = out_of_fds()
        set_soft_nofile(w, nfds(w) + 8)
    # The queued clients are taken in and served.
    for s in queued:
        s.settimeout(10)
        assert recv_all(s).endswith(b"a" * 20)
        s.close()
    out_s = time.monotonic() - t_out
    lines = re.findall(EMFILE_LINE, d.log()[mark:])
    assert 1 <= len(lines) <= out_s + 1, (len(lines), out_s)
    wait_until(lambda: metric(mport, "drover_accept_errors_total", errno="EMFILE") > 0, 5,
               "drover_accept_errors_total{errno=EMFILE}")
    print(f"\nout of fds [{model}]: worker CPU {used * 1000:.0f} ms over 1 s, {len(lines)} log "
          f"lines in {out_s:.1f} s, "
          f"{metric(mport, 'drover_accept_errors_total', errno='EMFILE'):.0f} failures counted")


def test_control_socket_out_of_fds(drover):
    mport = free_port()
    d = drover("so:" + BIGBODY_SO, "-w", "1", "--metrics-bind", f"127.0.0.1:{mport}")
    ctl = d.pidfile[:-4] + ".ctl"
    wait_until(lambda: os.path.exists(ctl), 5, "the control socket")
    _, hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
    mark = d.log_mark()
    set_soft_nofile(d.pid, nfds(d.pid))
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(ctl)  # lands in the backlog: the master cannot accept it
    c.sendall(b"status\n")
    d.wait_log(r"control: accept: Too many open files", 5, since=mark)
    no_spin(d.pid)
    lines = re.findall(r"control: accept: Too many open files", d.log()[mark:])
    assert 1 <= len(lines) <= 3, lines
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (hard, hard))
    assert c.recv(65536).startswith(b'{"master"')  # answered once fds are back
    c.close()
    wait_until(lambda: metric(mport, "drover_master_accept_errors_total", server="control",
                              errno="EMFILE") > 0, 5, "drover_master_accept_errors_total")
    assert d.alive()


def start_limited(drover, monkeypatch, soft, hard, *args):
    """Start drover with its RLIMIT_NOFILE set to (soft, hard) from the
    start (the fixture still owns the processes)."""
    orig = subprocess.Popen

    def popen(*a, **kw):
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        return orig(*a, **kw)
    monkeypatch.setattr(subprocess, "Popen", popen)
    try:
        return drover("so:" + BIGBODY_SO, *args)
    finally:
        monkeypatch.setattr(subprocess, "Popen", orig)


def proc_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", f.read(), re.M)
    return int(m.group(1)), int(m.group(2))


def test_master_raises_its_soft_limit(drover, monkeypatch):
    d = start_limited(drover, monkeypatch, 256, 8192, "-w", "2", "-k", "event",
                      "--worker-connections", "3000", "--backlog", "128")
    soft, hard = proc_nofile(d.pid)
    assert hard == 8192 and 3000 < soft < 8192, (soft, hard)
    assert proc_nofile(d.workers()[0]) == (soft, hard)  # the workers inherit it
    d.wait_log(r"soft RLIMIT_NOFILE raised from 256 to %d \(hard 8192\)" % soft, 5)


def test_master_warns_when_the_hard_limit_is_low(drover, monkeypatch):
    d = start_limited(drover, monkeypatch, 256, 512, "-w", "2", "-k", "thread",
                      "--worker-connections", "3000", "--backlog", "128")
    assert proc_nofile(d.pid) == (512, 512)
    d.wait_log(r"open files: need \d+ \(worker: \d+ with worker_connections 3000; .*"
               r"hard RLIMIT_NOFILE is 512", 5)
