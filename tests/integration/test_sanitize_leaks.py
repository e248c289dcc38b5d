"""LeakSanitizer on the master (issue 16): a master built with ASan
(`tests/run --sanitize`, build-sanitize) goes through a loop of HUP,
TTIN/TTOU, control-socket commands and metrics scrapes, is stopped with TERM,
and its leak report must be empty.  Skipped on a build without ASan.

Reports go to files (log_path=DIR/lsan -> DIR/lsan.PID), so the master's is
told apart from the workers' (which leave with _exit and are not judged
here); tests/sanitize/lsan.supp holds the suppressions, each with its
reason."""
import json
import os
import signal
import socket

import pytest

from conftest import (DROVER_BIN, HELLO_SO, REPO, free_port, http, wait_until)

EXAMPLES = os.path.join(REPO, "contrib", "examples")
SUPP = os.path.join(REPO, "tests", "sanitize", "lsan.supp")


def built_with_asan():
    try:
        with open(DROVER_BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not built_with_asan(),
                                reason="drover is not built with ASan (tests/run --sanitize)")


def command(path, line, timeout=10):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf) if buf else None


def replaced(d, old, n, timeout=30):
    """Wait until the master has n workers, none of them in old (a reload)."""
    def done():
        now = d.workers()
        return len(now) == n and not set(now) & set(old)
    wait_until(done, timeout, f"{n} new workers after HUP", interval=0.05)


def scrape(port, path):
    raw = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    return http(port, raw, timeout=10)


def leak_loop(d, mport, rounds):
    ctl = os.path.join(d.dir, "drover.ctl")
    wait_until(lambda: os.path.exists(ctl), 10, "control socket")
    for _ in range(rounds):
        old = d.wait_workers(2, timeout=30)
        d.signal(signal.SIGHUP)
        replaced(d, old, 2)
        d.signal(signal.SIGTTIN)
        d.wait_workers(3, timeout=30)
        d.signal(signal.SIGTTOU)
        d.wait_workers(2, timeout=30)
        for line in ("status", "status table", "metrics", "doctor", "doctor json", "ping",
                     "incr", "decr", "workers 2", "nosuch", "status x y", "workers -1"):
            assert command(ctl, line) is not None, line
        for path in ("/metrics", "/status.json", "/", "/nope"):
            assert scrape(mport, path).startswith(b"HTTP/1.1 "), path
        assert http(mport, b"BAD\r\n\r\n", timeout=10).startswith(b"HTTP/1.1 400")
        assert http(d.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    timeout=10).startswith(b"HTTP/1.1 200")


def master_report(logdir, pid):
    path = os.path.join(logdir, f"lsan.{pid}")
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


@pytest.mark.parametrize("model,app", [
    ("sync", "so:" + HELLO_SO),
    ("event", "so:" + HELLO_SO),
    # CPython in the master too (preload): its own allocations must not
    # show up as the master's leaks either
    ("thread", "python:hello:app"),
])
def test_master_leak_free(drover, tmp_path, model, app):
    logdir = str(tmp_path)
    env = {
        # detect_leaks for this master (and so its forks; workers end with
        # _exit, so only the master runs the exit-time check); atexit=1
        # writes allocator stats at a normal exit: proof the check ran
        "ASAN_OPTIONS": f"detect_leaks=1:atexit=1:log_path={logdir}/lsan:"
                        f"abort_on_error=0:allocator_may_return_null=1",
        # the same log_path for UBSan: in clang's combined runtime the last
        # options parsed (UBSAN_OPTIONS) set the one log_path of both
        "UBSAN_OPTIONS": f"print_stacktrace=1:log_path={logdir}/lsan",
        "LSAN_OPTIONS": f"suppressions={SUPP}:print_suppressions=0",
        "PYTHONMALLOC": "malloc",
    }
    args = ["--preload"] if app.startswith("python:") else []
    mport = free_port()
    d = drover(app, "-w", "2", "-k", model, "--metrics-bind", str(mport),
               "--sample-interval", "0.2", *args, env=env, cwd=EXAMPLES, wait_timeout=30)
    leak_loop(d, mport, rounds=3)
    rc = d.stop(timeout=30)
    report = master_report(logdir, d.pid)
    assert "LeakSanitizer" not in report, report[-6000:]
    assert "ERROR" not in report, report[-6000:]
    assert "Stats:" in report, f"no exit-time check ran in the master: {report[-2000:]!r}"
    assert rc == 0, f"master exit status {rc}; log:\n{d.log()[-3000:]}"
