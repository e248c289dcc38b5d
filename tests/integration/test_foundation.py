"""Foundation: drover serves the example C apps, its CLI and config behave,
signals to the master do what the signal table says, and the HTTP limits
answer with the right status.  Every test is bounded to a few seconds."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (ECHO_SO, HELLO_SO, REPO, cmdline, describe, free_port, get, http,
                      pid_alive, run_drover, status_of, wait_until)

HELLO = "so:" + HELLO_SO
ECHO = "so:" + ECHO_SO
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def options_def():
    """[(section, key, type, default)] from conf/options.def."""
    rx = re.compile(r'^OPT\((\w+),\s*(\w+),\s*(\w+),\s*"([^"]*)"')
    with open(os.path.join(REPO, "conf", "options.def")) as f:
        return [m.groups() for m in map(rx.match, f) if m]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def in_request_sleep(pids):
    """True if one of pids is sleeping inside a request (echo.so ?sleep=MS:
    the worker sits in nanosleep/clock_nanosleep)."""
    for p in pids:
        try:
            with open(f"/proc/{p}/syscall") as f:
                nr = f.read().split()[0]
        except (OSError, IndexError):
            continue
        if nr in ("35", "230"):  # nanosleep, clock_nanosleep (x86_64)
            return True
    return False


class Client(threading.Thread):
    """Loops GET requests until stopped or a time/count bound; counts
    successes and failures."""

    def __init__(self, url, seconds=10.0, max_requests=100000):
        super().__init__(daemon=True)
        self.url, self.seconds, self.max_requests = url, seconds, max_requests
        self.ok = 0
        self.failures = []
        self._halt = threading.Event()

    def run(self):
        end = time.monotonic() + self.seconds
        n = 0
        while not self._halt.is_set() and time.monotonic() < end and n < self.max_requests:
            n += 1
            try:
                st, _, body = get(self.url, timeout=5)
                if st == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"status {st}: {body[:200]!r}")
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(e))

    def finish(self):
        self._halt.set()
        self.join(10)


# ------------------------------------------------------------------ serving

def test_serves_hello(drover):
    d = drover(HELLO, "-w", "2")
    st, _, body = get(d.url + "/anything?x=1")
    assert st == 200
    assert body == b"Hello, World!\n"
    raw = http(d.port, b"GET / HTTP/1.0\r\n\r\n")
    assert status_of(raw) == 200, raw
    assert raw.endswith(b"Hello, World!\n")
    assert os.path.exists(d.pidfile)
    assert open(d.pidfile).read().strip() == str(d.pid)


def test_serves_echo(drover):
    d = drover(ECHO, "-w", "1")
    st, hdrs, body = get(d.url + "/a/b?x=1&y=two", data=b"hello body",
                         headers={"X-Test": "yes", "Content-Type": "text/plain"}, method="POST")
    assert st == 200, body
    j = json.loads(body)
    assert j["method"] == "POST"
    assert j["path"] == "/a/b"
    assert j["query"] == "x=1&y=two"
    assert j["body"] == "hello body"
    h = j["headers"]
    if isinstance(h, dict):
        h = list(h.items())
    h = {str(k).lower(): v for k, v in (tuple(x) if not isinstance(x, dict)
                                         else (x.get("name"), x.get("value")) for x in h)}
    assert h.get("x-test") == "yes", j["headers"]


def test_keepalive_or_explicit_close(drover):
    """An HTTP/1.1 request without Connection: close either keeps the
    connection for a second request, or the response says Connection: close
    (the sync model, like gunicorn's, serves one request per connection)."""
    d = drover(HELLO, "-w", "1")
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"Hello, World!\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, f"closed before the whole response: {buf!r}"
            buf += chunk
        head = buf.split(b"\r\n\r\n")[0].lower()
        if b"connection: close" in head:
            s.settimeout(5)
            assert s.recv(65536) == b"", "Connection: close but the connection stayed open"
            return
        s.sendall(b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    assert buf.count(b"HTTP/1.1 200") == 2, buf


def test_bind_unix_and_ipv6(drover, tmp_path):
    path = str(tmp_path / "drover.sock")
    d = drover(HELLO, "-w", "1", "-b", "unix:" + path)
    assert status_of(http(path, GET_CLOSE)) == 200
    d.stop()
    try:
        port6 = free_port(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    d6 = drover(HELLO, "-w", "1", "-b", f"[::1]:{port6}")
    st, _, body = get(f"http://[::1]:{port6}/")
    assert (st, body) == (200, b"Hello, World!\n")
    d6.stop()


# ------------------------------------------------------------------ CLI

def test_version_and_help():
    rc, out, err = run_drover("--version")
    assert rc == 0, err
    assert re.search(r"drover\D*\d+\.\d+\.\d+", out + err), out + err
    rc, out, err = run_drover("--help")
    assert rc == 0, err
    text = out + err
    for flag in ("--config", "--bind", "--workers", "--worker-class", "--timeout",
                 "--graceful-timeout", "--max-requests", "--preload", "--pidfile",
                 "--log-level", "--access-log", "--set", "--check-config", "--version"):
        assert flag in text, f"--help does not mention {flag}"
    missing = [k for _, k, _, _ in options_def() if "--" + k.replace("_", "-") not in text]
    assert not missing, f"--help lacks flags for options.def keys: {missing}"


def test_check_config_prints_effective_config(tmp_path):
    cfg = write(tmp_path / "d.ini", "[server]\nworkers = 3\ntimeout = 7\n[http]\nmax_body = 1M\n")
    rc, out, err = run_drover("-c", cfg, "--check-config", HELLO)
    assert rc == 0, err
    assert re.search(r"^\[server\]", out, re.M), out
    assert re.search(r"^\s*workers\s*=\s*3\s*$", out, re.M), out
    assert re.search(r"^\s*timeout\s*=\s*7", out, re.M), out
    assert re.search(r"^\s*backlog\s*=\s*2048\s*$", out, re.M), out  # a default
    assert HELLO_SO in out  # the app
    # every option of the table is printed
    missing = [k for _, k, _, _ in options_def() if not re.search(rf"^\s*{k}\s*=", out, re.M)]
    assert not missing, f"--check-config does not print {missing}"


def test_precedence_defaults_file_flags(tmp_path):
    cfg = write(tmp_path / "d.ini", "[server]\nworkers = 3\nmax_requests = 10\n")
    rc, out, err = run_drover("--check-config", HELLO)
    assert rc == 0, err
    assert re.search(r"^\s*workers\s*=\s*2\s*$", out, re.M), out  # default
    rc, out, err = run_drover("-c", cfg, "--check-config", HELLO)
    assert re.search(r"^\s*workers\s*=\s*3\s*$", out, re.M), out  # file over default
    rc, out, err = run_drover("-c", cfg, "-w", "5", "--max-requests", "20", "--check-config", HELLO)
    assert rc == 0, err
    assert re.search(r"^\s*workers\s*=\s*5\s*$", out, re.M), out  # flag over file
    assert re.search(r"^\s*max_requests\s*=\s*20\s*$", out, re.M), out
    rc, out, err = run_drover("-c", cfg, "--set", "server.workers=4", "--check-config", HELLO)
    assert rc == 0, err
    assert re.search(r"^\s*workers\s*=\s*4\s*$", out, re.M), out
    rc, out, err = run_drover("-c", cfg, "--set", "http.read_timeout=2", "--check-config", HELLO)
    assert rc == 0, err
    assert re.search(r"^\s*read_timeout\s*=\s*2", out, re.M), out


BAD_CONFIGS = {
    # name: (ini text, line, section, key)
    "unknown_key": ("[server]\nworkers = 2\nno_such_key = 1\n", 3, "server", "no_such_key"),
    "bad_int": ("[server]\nworkers = lots\n", 2, "server", "workers"),
    "out_of_range": ("# comment\n[server]\n\nworkers = 0\n", 4, "server", "workers"),
    "too_big": ("[http]\nmax_header_count = 99999999\n", 2, "http", "max_header_count"),
    "bad_duration": ("[server]\ntimeout = soon\n", 2, "server", "timeout"),
    "bad_enum": ("[server]\nworker_class = fork\n", 2, "server", "worker_class"),
    "bad_bool": ("[server]\npreload = maybe\n", 2, "server", "preload"),
    "unknown_section": ("[server]\nworkers = 2\n[nosuch]\nkey = 1\n", (3, 4), "nosuch", None),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_naming_file_line(tmp_path, case):
    text, line, section, key = BAD_CONFIGS[case]
    cfg = write(tmp_path / "bad.ini", text)
    rc, out, err = run_drover("-c", cfg, "-b", f"127.0.0.1:{free_port()}", HELLO, timeout=10)
    assert rc == 2, f"exit {rc}, stderr: {err}"
    lines = line if isinstance(line, tuple) else (line,)
    rx = re.escape(cfg) + r":(\d+): \[" + re.escape(section) + r"\]"
    if key:
        rx += r" " + re.escape(key) + r":"
    m = re.search(rx, err)
    assert m, f"no '{cfg}:LINE: [{section}] {key or ''}:' in stderr: {err!r}"
    assert int(m.group(1)) in lines, f"line {m.group(1)}, expected {lines}: {err!r}"
    # --check-config validates the same way
    rc2, _, err2 = run_drover("-c", cfg, "--check-config", HELLO, timeout=10)
    assert rc2 == 2, err2


@pytest.mark.parametrize("args", [
    ("--workers", "abc"), ("--no-such-flag",), ("-w",), ("--set", "server.nosuch=1"),
    ("--set", "noequals"), ("--worker-class", "fork"),
], ids=lambda a: " ".join(a))
def test_bad_flags_exit_2(args):
    rc, out, err = run_drover(*args, "-b", f"127.0.0.1:{free_port()}", HELLO, timeout=10)
    assert rc == 2, f"exit {rc} for {args}; stderr: {err}"
    assert err.strip(), "no message for a usage error"


def test_missing_config_file_exits_2(tmp_path):
    path = str(tmp_path / "nope.ini")
    rc, out, err = run_drover("-c", path, "--check-config", HELLO)
    assert rc == 2, err
    assert path in err


def test_bind_in_use_exits_1(tmp_path):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        t0 = time.monotonic()
        rc, out, err = run_drover("-b", f"127.0.0.1:{port}", HELLO, timeout=10)
        took = time.monotonic() - t0
    finally:
        blocker.close()
    assert rc == 1, f"exit {rc}; stderr: {err}"
    assert str(port) in err, err
    assert re.search(r"in use|EADDRINUSE", err, re.I), err
    assert took < 5


# ------------------------------------------------------------------ signals

def test_ttin_ttou(drover):
    d = drover(HELLO, "-w", "2")
    d.wait_workers(2)
    d.signal(signal.SIGTTIN)
    d.wait_workers(3)
    d.signal(signal.SIGTTIN)
    d.wait_workers(4)
    for n in (3, 2, 1):
        d.signal(signal.SIGTTOU)
        d.wait_workers(n)
    # never below one: two more TTOU, then the pool stays at 1 and serves
    d.signal(signal.SIGTTOU)
    d.signal(signal.SIGTTOU)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        assert len(d.workers()) == 1, d.log()
        time.sleep(0.05)
    assert get(d.url)[0] == 200
    assert d.alive()


def test_hup_replaces_every_worker_without_failed_requests(drover):
    d = drover(HELLO, "-w", "2", config="[server]\nworkers = 2\n")
    old = set(d.wait_workers(2))
    c = Client(d.url, seconds=8)
    c.start()
    wait_until(lambda: c.ok >= 5, 5, "client requests before HUP")
    d.signal(signal.SIGHUP)

    def replaced():
        w = set(d.workers())
        return len(w) == 2 and not (w & old)
    try:
        wait_until(replaced, 10, "every worker replaced after HUP")
        before = c.ok
        wait_until(lambda: c.ok >= before + 20, 5, "requests after the reload")
    finally:
        c.finish()
    assert d.alive()
    assert c.failures == [], f"{len(c.failures)} failed requests: {c.failures[:5]}"
    assert c.ok > 25


def test_hup_applies_new_config(drover):
    d = drover(HELLO, config="[server]\nworkers = 2\n")
    d.wait_workers(2)
    write(d.config_path, "[server]\nworkers = 3\n")
    d.signal(signal.SIGHUP)
    d.wait_workers(3)
    assert get(d.url)[0] == 200


def test_hup_with_broken_config_keeps_old(drover):
    d = drover(HELLO, config="[server]\nworkers = 2\n")
    old = set(d.wait_workers(2))
    mark = d.log_mark()
    write(d.config_path, "[server]\nworkers = 2\nbogus_key = 1\n")
    d.signal(signal.SIGHUP)
    d.wait_log(re.escape(d.config_path) + r":3:", timeout=5, since=mark)
    # the old workers go on serving, untouched
    for _ in range(10):
        assert get(d.url)[0] == 200
    assert set(d.workers()) == old, d.log()
    assert d.alive()


def test_term_lets_in_flight_request_finish(drover):
    d = drover(ECHO, "-w", "1", "--graceful-timeout", "10")
    workers = d.wait_workers(1)
    result = {}

    def slow():
        t0 = time.monotonic()
        try:
            result["resp"] = get(d.url + "/slow?sleep=1500", timeout=10)
        except Exception as e:  # noqa: BLE001
            result["error"] = repr(e)
        result["took"] = time.monotonic() - t0
    t = threading.Thread(target=slow, daemon=True)
    t.start()
    wait_until(lambda: in_request_sleep(workers), 5, "the request to be in flight")
    t_term = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(10)
    exit_after = time.monotonic() - t_term
    t.join(10)
    assert "error" not in result, f"in-flight request failed on TERM: {result['error']}\n{d.log()}"
    st, _, body = result["resp"]
    assert st == 200, body
    assert json.loads(body)["path"] == "/slow"
    assert rc == 0, f"master exit status {rc} after TERM"
    assert exit_after < 8
    assert not any(pid_alive(w) for w in workers)


def test_int_fast_stop(drover):
    d = drover(ECHO, "-w", "1", "--graceful-timeout", "20")
    workers = d.wait_workers(1)
    t = threading.Thread(target=lambda: http(d.port, b"GET /?sleep=8000 HTTP/1.1\r\nHost: x\r\n\r\n",
                                             timeout=10), daemon=True)
    t.start()
    wait_until(lambda: in_request_sleep(workers), 5, "the request to be in flight")
    t0 = time.monotonic()
    d.signal(signal.SIGINT)
    d.wait_exit(5)
    assert time.monotonic() - t0 < 3, "INT waited for the in-flight request"
    wait_until(lambda: not any(pid_alive(w) for w in workers), 3, "workers gone after INT")


def test_killed_worker_is_replaced(drover, capsys):
    d = drover(HELLO, "-w", "2")
    before = d.wait_workers(2)
    victim = before[0]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    def replaced():
        w = d.workers()
        return len(w) == 2 and victim not in w
    wait_until(replaced, 5, "the killed worker to be replaced", interval=0.001)
    ms = (time.monotonic() - t0) * 1000
    with capsys.disabled():
        print(f"\n[drover] killed worker {victim} replaced in {ms:.1f} ms")
    assert before[1] in d.workers()  # the other one untouched
    assert get(d.url)[0] == 200


def test_master_kill9_takes_workers_down(drover):
    d = drover(HELLO, "-w", "3")
    workers = d.wait_workers(3)
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(5)
    try:
        wait_until(lambda: not any(pid_alive(w) for w in workers), 5,
                   f"workers {workers} to die with the master (PDEATHSIG)")
    except AssertionError as e:
        raise AssertionError(f"{e}\n" + "\n".join(describe(w) for w in workers)
                             + "\nlog:\n" + d.log()[-3000:]) from None


def test_winch_stops_workers_master_stays(drover):
    d = drover(HELLO, "-w", "2")
    d.wait_workers(2)
    d.signal(signal.SIGWINCH)
    d.wait_workers(0, timeout=10)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        assert d.alive(), d.log()
        assert d.workers() == [], "workers came back after WINCH"
        time.sleep(0.05)
    assert d.stop() is not None


def test_usr1_reopens_access_log(drover, tmp_path):
    log = str(tmp_path / "access.log")
    d = drover(HELLO, "-w", "1", "--access-log", log)
    assert get(d.url + "/first")[0] == 200
    wait_until(lambda: os.path.exists(log) and "/first" in open(log).read(), 5,
               "the access log line for /first")
    os.rename(log, log + ".1")
    d.signal(signal.SIGUSR1)
    # the reopen is asynchronous: keep asking until a request lands in the new file
    def in_new_file():
        get(d.url + "/second")
        return os.path.exists(log) and "/second" in open(log).read()
    wait_until(in_new_file, 5, "an access log line in the reopened file", interval=0.1)
    assert "/first" not in open(log).read()


def test_process_titles(drover):
    d = drover(HELLO, "-w", "2")
    workers = d.wait_workers(2)
    assert "drover: master" in cmdline(d.pid), cmdline(d.pid)
    for w in workers:
        # a just-forked worker shows the master's title until it sets its own
        try:
            wait_until(lambda: re.search(r"drover: worker \d+ \[sync\]", cmdline(w)), 5,
                       f"worker {w}'s title")
        except AssertionError:
            raise AssertionError(f"worker title: {cmdline(w)!r}") from None


# ------------------------------------------------------------------ supervision

def test_scoreboard_timeout_kills_stuck_worker(drover):
    d = drover(ECHO, "-w", "1", "--timeout", "1")
    (stuck,) = d.wait_workers(1)
    t = threading.Thread(target=lambda: http(d.port, b"GET /?sleep=5000 HTTP/1.1\r\nHost: x\r\n\r\n",
                                             timeout=8), daemon=True)
    t.start()
    m = d.wait_log(r"worker (\d+) \(pid (\d+)\) timed out after ([\d.]+) ?s", timeout=4)
    assert int(m.group(2)) == stuck, m.group(0)
    assert float(m.group(3)) >= 1.0
    wait_until(lambda: not pid_alive(stuck), 2, "the stuck worker to be killed")
    new = d.wait_workers(1, timeout=5)
    assert new[0] != stuck
    assert get(d.url)[0] == 200
    t.join(8)


def test_max_requests_recycles_worker(drover):
    d = drover(HELLO, "-w", "1", "--max-requests", "5")
    pids = set(d.wait_workers(1))
    failures = []
    for i in range(20):
        try:
            st, _, body = get(d.url + f"/r{i}")
            if st != 200:
                failures.append(st)
        except Exception as e:  # noqa: BLE001
            failures.append(repr(e))
        pids.update(d.workers())
    assert failures == [], failures
    # 20 (+1 readiness) requests at 5 per worker: at least three replacements
    assert len(pids) >= 4, f"worker pids seen: {pids}; log:\n{d.log()}"
    d.wait_workers(1)


def test_app_that_fails_to_load_exits_quickly():
    missing = "/nonexistent/drover-test/nope.so"
    t0 = time.monotonic()
    rc, out, err = run_drover("-b", f"127.0.0.1:{free_port()}", "so:" + missing, timeout=15)
    took = time.monotonic() - t0
    assert rc != 0, err
    assert missing in err, err
    assert took < 8, f"took {took:.1f}s to give up"


def test_app_missing_symbol_exits_quickly():
    t0 = time.monotonic()
    rc, out, err = run_drover("-b", f"127.0.0.1:{free_port()}", f"so:{HELLO_SO}:no_such_symbol",
                              timeout=15)
    assert rc != 0, err
    assert "no_such_symbol" in err, err
    assert time.monotonic() - t0 < 8


# ------------------------------------------------------------------ HTTP limits

def req(target=b"/", headers=(), body=b"", method=b"GET"):
    h = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return (method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n" + h
            + b"Connection: close\r\n\r\n" + body)


@pytest.fixture
def limited(drover):
    return drover(HELLO, "-w", "1", "--set", "http.max_body=1k")


def test_limit_request_line(limited):
    assert status_of(limited.http(req(b"/" + b"a" * 4000))) == 200
    assert status_of(limited.http(req(b"/" + b"a" * 9000))) == 400


def test_limit_header_count(limited):
    # Host and Connection count: 98 more make 100 fields, still fine
    ok = [(b"X-H%d" % i, b"v") for i in range(98)]
    assert status_of(limited.http(req(headers=ok))) == 200
    too_many = [(b"X-H%d" % i, b"v") for i in range(120)]
    assert status_of(limited.http(req(headers=too_many))) == 431


def test_limit_header_size(limited):
    assert status_of(limited.http(req(headers=[(b"X-Big", b"v" * 4000)]))) == 200
    assert status_of(limited.http(req(headers=[(b"X-Big", b"v" * 9000)]))) == 431


def test_limit_body(limited):
    small = b"x" * 1000
    assert status_of(limited.http(req(method=b"POST", body=small,
                                      headers=[(b"Content-Length", b"1000")]))) == 200
    big = b"x" * 2048
    assert status_of(limited.http(req(method=b"POST", body=big,
                                      headers=[(b"Content-Length", b"2048")]))) == 413


def test_limit_body_read_by_app(drover):
    """echo.so reads the body: past max_body, by Content-Length or by chunks,
    the answer is 413."""
    d = drover(ECHO, "-w", "1", "--set", "http.max_body=1k")
    resp = d.http(req(method=b"POST", body=b"x" * 1000, headers=[(b"Content-Length", b"1000")]))
    assert status_of(resp) == 200, resp[:200]
    resp = d.http(req(method=b"POST", body=b"x" * 2048, headers=[(b"Content-Length", b"2048")]))
    assert status_of(resp) == 413, resp[:200]
    small = b"3e8\r\n" + b"x" * 1000 + b"\r\n0\r\n\r\n"
    resp = d.http(req(method=b"POST", body=small, headers=[(b"Transfer-Encoding", b"chunked")]))
    assert status_of(resp) == 200, resp[:200]
    assert json.loads(resp.split(b"\r\n\r\n", 1)[1])["body"] == "x" * 1000
    big = b"400\r\n" + b"x" * 1024 + b"\r\n400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n"
    resp = d.http(req(method=b"POST", body=big, headers=[(b"Transfer-Encoding", b"chunked")]))
    assert status_of(resp) == 413, resp[:200]
    assert status_of(d.http(GET_CLOSE)) == 200


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
], ids=["garbage", "no-colon", "bad-version", "bad-content-length", "two-content-lengths"])
def test_malformed_request_is_400(limited, raw):
    resp = limited.http(raw)
    allowed = (400, 505) if b"HTTP/9.9" in raw else (400,)
    assert status_of(resp) in allowed, resp[:200]
    # the worker survives it
    assert status_of(limited.http(GET_CLOSE)) == 200


@pytest.mark.parametrize("partial", [
    b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
], ids=["mid-head", "mid-body"])
def test_silent_client_closed_after_read_timeout(drover, partial):
    # echo.so reads the body, so a silent client mid-body is waited for
    d = drover(ECHO, "-w", "1", "--set", "http.read_timeout=1")
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(partial)
        t0 = time.monotonic()
        s.settimeout(6)
        try:
            while s.recv(65536):
                pass  # a 408 may come before the close
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("connection still open 6 s after the client fell silent")
        took = time.monotonic() - t0
    assert 0.8 <= took < 4, f"closed after {took:.2f}s, read_timeout is 1s"
    assert get(d.url)[0] == 200  # and the worker is free again


def test_example_config_is_valid():
    ini = os.path.join(REPO, "contrib", "drover.ini")
    assert os.path.exists(ini), "contrib/drover.ini is missing"
    rc, out, err = run_drover("-c", ini, "--check-config", HELLO)
    assert rc == 0, err


def build_app(tmp_path, name, source):
    """Compile a small C app against workers/app/app.h; return its path."""
    src = tmp_path / (name + ".c")
    src.write_text(source)
    so = str(tmp_path / (name + ".so"))
    r = subprocess.run(["gcc", "-shared", "-fPIC", "-o", so, "-I",
                        os.path.join(REPO, "workers", "app"), str(src)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return so


FAILING_INIT = r"""
#include "app.h"
static int init(void **data) { (void)data; return 1; }
static int handle(struct drover_request *q, struct drover_response *r) { return 0; }
const struct drover_app drover_app = { DROVER_APP_ABI_VERSION, "failinit", init, handle, 0 };
"""


def test_boot_failures_back_off_then_master_exits(tmp_path):
    so = build_app(tmp_path, "failinit", FAILING_INIT)
    t0 = time.monotonic()
    rc, out, err = run_drover("-w", "1", "--max-boot-failures", "3",
                              "-b", f"127.0.0.1:{free_port()}", "so:" + so, timeout=30)
    took = time.monotonic() - t0
    assert rc not in (0, None), err
    assert re.search(r"boot|fail", err, re.I), err
    print(f"\n[drover] gave up after 3 boot failures in {took:.2f} s")
