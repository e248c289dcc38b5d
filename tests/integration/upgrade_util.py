"""Helpers shared by test_upgrade.py and test_socket_activation.py: masters
that no fixture started (a new master forked by USR2, reparented once the
old one exits) are tracked by pid and start time and killed at teardown."""
import os
import signal

from conftest import children_of, kill_if_same, pid_alive, proc_stat, wait_until


class Masters:
    """Masters started behind the fixture's back, and their workers."""

    def __init__(self):
        self.seen = {}  # pid -> starttime

    def track(self, pid):
        st = proc_stat(pid)
        if st:
            self.seen[pid] = st[2]
            for k in children_of(pid):
                kst = proc_stat(k)
                if kst:
                    self.seen[k] = kst[2]
        return pid

    def workers(self, pid, but=()):
        """Live children of pid (a master not ours to wait for), minus but."""
        self.track(pid)
        return [k for k in children_of(pid) if k not in but]

    def cleanup(self):
        for pid, start in list(self.seen.items()):
            if pid_alive(pid):
                for k in children_of(pid):
                    st = proc_stat(k)
                    if st:
                        self.seen.setdefault(k, st[2])
        for pid, start in self.seen.items():
            kill_if_same(pid, start, signal.SIGKILL)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_gone(pid, timeout=15):
    wait_until(lambda: not pid_alive(pid), timeout, f"pid {pid} to exit")


def exe_ino(pid):
    return os.stat(f"/proc/{pid}/exe").st_ino


class KeepAliveLoad:
    """Closed-loop GETs over keep-alive connections from `threads` threads
    while the with-block runs.  A response with Connection: close makes the
    client reconnect.  .failures holds resets, errors and responses cut
    short; a reused connection closed before any byte of the response (the
    server closed it idle as the request crossed: RFC 9112 section 9.3.1 lets
    a client retry that) is retried once on a new connection and counted in
    .retried.  Entering returns once more than min_ok requests succeeded."""

    REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

    def __init__(self, port, threads=2, min_ok=5):
        import threading
        self.port, self.min_ok = port, min_ok
        self.ok, self.retried, self.reconnects, self.failures = 0, 0, 0, []
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _connect(self):
        import socket
        self.reconnects += 1
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        return s

    def _one(self, s):
        """(ok, close?) or raise; EOFError('idle') if nothing came back."""
        import re
        s.sendall(self.REQ)
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = s.recv(65536)
            if not c:
                raise EOFError("idle" if not buf else "cut in the head")
            buf += c
        head, _, body = buf.partition(b"\r\n\r\n")
        n = int(re.search(rb"(?i)^content-length:\s*(\d+)", head, re.M).group(1))
        while len(body) < n:
            c = s.recv(65536)
            if not c:
                raise EOFError("cut in the body")
            body += c
        return head.split(b" ", 2)[1] == b"200", bool(
            re.search(rb"(?i)^connection:\s*close", head, re.M))

    def _run(self):
        s, fresh = None, False
        while not self.halt.is_set():
            try:
                if s is None:
                    s, fresh = self._connect(), True
                ok, close = self._one(s)
                fresh = False
                if ok:
                    self.ok += 1
                else:
                    self.failures.append("status")
                if close:
                    s.close()
                    s = None
            except EOFError as e:
                s.close()
                s = None
                if str(e) == "idle" and not fresh:
                    self.retried += 1  # the next loop retries on a new connection
                else:
                    self.failures.append(repr(e))
            except OSError as e:
                if s:
                    s.close()
                s = None
                self.failures.append(repr(e))
        if s:
            s.close()

    def __enter__(self):
        from conftest import wait_until
        for t in self.threads:
            t.start()
        try:
            if self.threads:
                wait_until(lambda: self.ok > self.min_ok, 10, "keep-alive load running")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for t in self.threads:
            t.join(25)
