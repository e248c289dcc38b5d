"""The integration-test harness: start the real drover binary on real loopback
sockets, drive it with real signals, and clean up every process by pid.

Contract (other test files rely on it):
  from conftest import REPO, DROVER_BIN, HELLO_SO, ECHO_SO, http, get, run_drover
  def test_x(drover):
      d = drover("so:" + HELLO_SO, "-w", "2", config=None, env=None, wait=True)
      d.port, d.url, d.pid, d.proc, d.log(), d.workers(), d.wait_workers(n, timeout),
      d.wait_log(regex, timeout), d.signal(sig), d.stop()
Nothing here sleeps to "give it time": every wait polls a condition against a
deadline.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[2])
BUILD = os.path.abspath(os.environ.get("DROVER_BUILD") or os.path.join(REPO, "build"))
DROVER_BIN = os.path.join(BUILD, "supervisor", "drover")
HELLO_SO = os.path.join(BUILD, "contrib", "hello.so")
ECHO_SO = os.path.join(BUILD, "contrib", "echo.so")
APPS_DIR = os.path.join(REPO, "tests", "integration", "apps")

POLL = 0.01  # seconds between two looks at a condition


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, ppid, starttime) of pid from /proc/PID/stat, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    # rest[0] is field 3 (state), rest[1] field 4 (ppid), rest[19] field 22 (starttime)
    return rest[0], int(rest[1]), int(rest[19])


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children_of(ppid):
    """Pids of the live (non-zombie) direct children of ppid, sorted.

    /proc/PID/task/*/children needs CONFIG_PROC_CHILDREN, which not every
    kernel has, so scan /proc/*/stat for the parent pid instead."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[1] == ppid and st[0] not in ("Z", "X"):
            out.append(int(name))
    return sorted(out)


def describe(pid):
    """One line about pid for failure messages: state, ppid, title, syscall."""
    st = proc_stat(pid)
    if st is None:
        return f"{pid}: gone"
    try:
        with open(f"/proc/{pid}/syscall") as f:
            sc = f.read().split()[0]
    except (OSError, IndexError):
        sc = "?"
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
    except OSError:
        wchan = "?"
    return f"{pid}: state {st[0]} ppid {st[1]} syscall {sc} wchan {wchan} [{cmdline(pid)}]"


def cmdline(pid):
    """/proc/PID/cmdline with NULs turned to spaces and trailing blanks cut."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def kill_if_same(pid, starttime, sig=signal.SIGKILL):
    """Signal pid only if it is still the process we saw (same start time), so
    a recycled pid is never hit."""
    st = proc_stat(pid)
    if st is None or st[2] != starttime or st[0] in ("Z", "X"):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_until(cond, timeout, what="condition", interval=POLL):
    """Poll cond() until it returns a true value (returned) or raise."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A loopback port that nobody listens on right now."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- HTTP

def _response_complete(buf):
    """True once buf holds one whole HTTP response (by Content-Length or
    chunked framing); a close-delimited body is only complete at EOF."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = buf[:head_end].decode("latin-1").lower()
    body = buf[head_end + 4:]
    status = re.match(r"http/1\.[01] (\d{3})", head)
    if status and (status.group(1).startswith("1") or status.group(1) in ("204", "304")):
        return True
    m = re.search(r"^content-length:\s*(\d+)\s*$", head, re.M)
    if m:
        return len(body) >= int(m.group(1))
    if re.search(r"^transfer-encoding:.*chunked", head, re.M):
        return body.endswith(b"0\r\n\r\n")
    return False


def read_response(s):
    """(status, lowercased head, body) of one response; raises on a reset
    or an early EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            raise EOFError(f"EOF before a response head: {buf!r}")
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    head = head.decode("latin-1").lower()
    n = int(re.search(r"^content-length:\s*(\d+)", head, re.M).group(1))
    while len(body) < n:
        c = s.recv(65536)
        if not c:
            raise EOFError("EOF in the body")
        body += c
    return int(head.split()[1]), head, body


def http(port, raw, timeout=5, host="127.0.0.1", family=None):
    """Send raw bytes on a fresh connection; return what comes back, read
    until the server closes, one whole response has arrived, or timeout.
    port may be an int (TCP on host) or a str (a unix socket path)."""
    if isinstance(port, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = port
    else:
        fam = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
        s = socket.socket(fam, socket.SOCK_STREAM)
        addr = (host, port)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        s.settimeout(timeout)
        s.connect(addr)
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading it all
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            if _response_complete(buf):
                break
    finally:
        s.close()
    return buf


def status_of(resp):
    """The status code of a raw response, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url, timeout=5, data=None, headers=None, method=None):
    """Request url with urllib (never through a proxy); return (status,
    headers, body) for every status, 4xx and 5xx included."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ---------------------------------------------------------------- drover


class Load:
    """Closed-loop GETs of url from `threads` threads while the with-block
    runs: .ok counts 200s, .failures holds every other status and every
    exception (reset, timeout).  Entering returns once more than min_ok
    requests succeeded."""

    def __init__(self, url, threads=2, timeout=20, min_ok=5, join=25):
        self.url, self.timeout, self.min_ok, self.join = url, timeout, min_ok, join
        self.ok, self.failures = 0, []
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self.halt.is_set():
            try:
                st = get(self.url, timeout=self.timeout)[0]
                if st == 200:
                    self.ok += 1
                else:
                    self.failures.append(st)
            except Exception as e:  # noqa: BLE001
                self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        try:
            wait_until(lambda: self.ok > self.min_ok, 10, "load running")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for t in self.threads:
            t.join(self.join)

def _tmpdir():
    return tempfile.mkdtemp(prefix="drover-it-")


def run_drover(*args, timeout=15, cwd=None, env=None):
    """Run drover for a command that exits (--help, --check-config, a bad
    config, a bind failure); return (returncode, stdout, stderr) as text.
    If it does not exit within timeout, it and its children are killed and
    the test fails."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen([DROVER_BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, cwd=cwd or REPO, env=full_env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kids = [(k, proc_stat(k)) for k in children_of(p.pid)]
        p.kill()
        for k, st in kids:
            if st:
                kill_if_same(k, st[2])
        out, err = p.communicate()
        raise AssertionError(
            f"drover {' '.join(args)} did not exit within {timeout}s\n"
            f"stdout:\n{out.decode(errors='replace')}\nstderr:\n{err.decode(errors='replace')}")
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _has_bind(args):
    for a in args:
        if a in ("-b", "--bind") or a.startswith("--bind=") or (a.startswith("-b") and len(a) > 2):
            return True
    return False


def _first_bind(args):
    """The first bind address given in args, or None."""
    it = iter(range(len(args)))
    for i in it:
        a = args[i]
        if a in ("-b", "--bind") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--bind="):
            return a[len("--bind="):]
        if a.startswith("-b") and len(a) > 2:
            return a[2:]
    return None


class Drover:
    """One running drover master, started by the `drover` fixture."""

    def __init__(self, registry, app, args, config, env, cwd, wait, wait_timeout):
        self._registry = registry
        self.app = app
        self.dir = _tmpdir()
        self.pidfile = os.path.join(self.dir, "drover.pid")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.config_path = None
        args = list(args)
        cmd = [DROVER_BIN]
        if config is not None:
            self.config_path = os.path.join(self.dir, "drover.ini")
            with open(self.config_path, "w") as f:
                f.write(config)
            cmd += ["-c", self.config_path]
        self.port = None
        self.host = "127.0.0.1"
        self.unix_path = None
        if not _has_bind(args):
            self.port = free_port()
            cmd += ["-b", f"127.0.0.1:{self.port}"]
        else:
            self._parse_bind(_first_bind(args))
        cmd += ["--pidfile", self.pidfile]
        cmd += args
        cmd.append(app)
        self.cmd = cmd
        if cwd is None:
            cwd = APPS_DIR if os.path.isdir(APPS_DIR) else self.dir
        self.cwd = cwd
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        full_env.update(env or {})
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=cwd, env=full_env)
        self.pid = self.proc.pid
        st = proc_stat(self.pid)
        self._seen = {}  # pid -> starttime of every process of this drover we saw
        if st:
            self._seen[self.pid] = st[2]
        registry.append(self)
        if wait:
            self.wait_ready(wait_timeout)

    def _parse_bind(self, b):
        if b is None:
            return
        if b.startswith("unix:"):
            self.unix_path = b[len("unix:"):]
            return
        m = re.match(r"^\[(.*)\]:(\d+)$", b)
        if m:
            self.host, self.port = m.group(1), int(m.group(2))
            return
        host, _, port = b.rpartition(":")
        self.host = host or "127.0.0.1"
        if self.host in ("0.0.0.0", ""):
            self.host = "127.0.0.1"
        self.port = int(port)

    # -- addresses
    @property
    def url(self):
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def address(self):
        """What http() takes: the port, or the unix socket path."""
        return self.unix_path if self.unix_path else self.port

    def http(self, raw, timeout=5):
        return http(self.address, raw, timeout=timeout, host=self.host)

    # -- output
    def log(self):
        """Everything the master and its workers wrote to stderr so far."""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_mark(self):
        """An offset into log(): pass as since= to wait_log to see only what
        came after."""
        return len(self.log())

    def wait_log(self, regex, timeout=5, since=0):
        """Poll stderr until regex matches (at or after offset since); return
        the match."""
        rx = re.compile(regex, re.M)

        def found():
            return rx.search(self.log(), since)
        try:
            return wait_until(found, timeout, f"log line /{regex}/")
        except AssertionError:
            raise AssertionError(f"no log line matching /{regex}/ within {timeout}s; log:\n"
                                 + self.log()[-4000:]) from None

    # -- processes
    def alive(self):
        return self.proc.poll() is None

    def workers(self):
        """Pids of the master's live direct children."""
        if self.proc.poll() is not None:
            return []
        pids = children_of(self.pid)
        for p in pids:
            if p not in self._seen:
                st = proc_stat(p)
                if st:
                    self._seen[p] = st[2]
        return pids

    def wait_workers(self, n, timeout=10):
        """Poll until the master has exactly n workers; return their pids."""
        last = []

        def check():
            nonlocal last
            if self.proc.poll() is not None:
                raise AssertionError(f"master exited ({self.proc.returncode}) while waiting for "
                                     f"{n} workers; log:\n{self.log()[-4000:]}")
            last = self.workers()
            return len(last) == n  # (not the list itself: [] is falsy)
        try:
            wait_until(check, timeout, f"{n} workers")
            return last
        except AssertionError as e:
            if "master exited" in str(e):
                raise
            raise AssertionError(f"expected {n} workers within {timeout}s, have {len(last)} "
                                 f"{last}; log:\n{self.log()[-4000:]}") from None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_ready(self, timeout=10):
        """Poll until a TCP (or unix) connect + GET / gets an HTTP answer."""
        deadline = time.monotonic() + timeout
        req = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"drover exited with {self.proc.returncode} before serving; "
                                     f"cmd: {' '.join(self.cmd)}\nlog:\n{self.log()[-4000:]}")
            try:
                if status_of(self.http(req, timeout=1)) is not None:
                    self.workers()
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(f"drover not serving after {timeout}s; cmd: "
                                     f"{' '.join(self.cmd)}\nlog:\n{self.log()[-4000:]}")
            time.sleep(0.02)

    def wait_exit(self, timeout=10):
        """Wait for the master to exit; return its status (raise on timeout)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"master still running after {timeout}s; log:\n"
                                 f"{self.log()[-4000:]}") from None

    def stop(self, timeout=10):
        """TERM the master, wait for it, KILL it after timeout; return its
        exit status."""
        if self.proc.poll() is None:
            self.workers()  # remember the workers before they go
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        """Kill (by pid) the master and every worker we ever saw."""
        if self.proc.poll() is None:
            self.workers()
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for pid, start in self._seen.items():
            if pid != self.pid:
                kill_if_same(pid, start)
        for f in (self._out, self._err):
            try:
                f.close()
            except OSError:
                pass

    def remove_files(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def drover(request):
    """Factory: drover(app, *args, config=None, env=None, wait=True, cwd=None,
    wait_timeout=10) -> Drover.  Everything it started is killed at teardown,
    and the log of each master is printed when the test failed."""
    if not os.access(DROVER_BIN, os.X_OK):
        pytest.fail(f"{DROVER_BIN} is not built (set DROVER_BUILD or run tests/run)")
    started = []

    def factory(app, *args, config=None, env=None, wait=True, cwd=None, wait_timeout=10):
        return Drover(started, app, args, config, env, cwd, wait, wait_timeout)

    yield factory
    for d in started:
        d.cleanup()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for d in started:
            print(f"\n--- drover {' '.join(d.cmd)} (exit {d.proc.returncode}) stderr:\n"
                  + d.log()[-6000:])
    for d in started:
        d.remove_files()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def parse_json(body):
    return json.loads(body.decode("utf-8"))
