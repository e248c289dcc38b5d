"""HTTP/1.1 behaviour shared by the worker models (sync, thread, event), on
raw sockets against the real binary: keep-alive, pipelining, 100-continue,
chunked bodies both ways, slow clients, smuggling, drain without reset; and
what only the thread model promises.  A model this build does not have yet
(`drover -k MODEL --check-config` says "not available yet") is skipped.

Shared file: add test functions parametrized over MODELS; keep helpers
model-neutral.
"""
import json
import os
import signal
import socket
import time

import pytest

from conftest import ECHO_SO, HELLO_SO, run_drover, status_of

MODELS = ["sync", "thread", "event"]
_available = {}


def need_model(model):
    """Skip unless this build has the worker model."""
    if model not in _available:
        rc, out, err = run_drover("-k", model, "--check-config", "so:" + HELLO_SO)
        _available[model] = "not available yet" not in (out + err)
    if not _available[model]:
        pytest.skip(f"worker model {model} not available yet")


def keepalive_model(model):
    """sync closes after each request (gunicorn's sync): nothing to keep."""
    if model == "sync":
        pytest.skip("the sync model answers Connection: close")


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_response(s, buf=b"", timeout=5):
    """Read one whole response from s; return (head, body, rest): body
    de-chunked, rest the bytes after it (a pipelined next response)."""
    deadline = time.monotonic() + timeout

    def more():
        nonlocal buf
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; got {buf[:300]!r}")
        buf += chunk

    while b"\r\n\r\n" not in buf:
        more()
    head, _, buf = buf.partition(b"\r\n\r\n")
    h = head.decode("latin-1").lower()
    status = status_of(head)
    if status is not None and (100 <= status < 200 or status in (204, 304)):
        return head, b"", buf
    fields = dict(line.split(":", 1) for line in h.split("\r\n")[1:] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if "content-length" in fields:
        n = int(fields["content-length"])
        while len(buf) < n:
            more()
        return head, buf[:n], buf[n:]
    if "chunked" in fields.get("transfer-encoding", ""):
        body = b""
        while True:
            while b"\r\n" not in buf:
                more()
            size_line, _, buf = buf.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            while len(buf) < n + 2:
                more()
            if n == 0:
                # no trailers expected: "0\r\n\r\n"
                return head, body, buf[2:]
            body += buf[:n]
            buf = buf[n + 2:]
    while True:  # close-delimited
        try:
            more()
        except EOFError:
            return head, buf, b""


def header(head, name):
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def get_req(target="/", extra=""):
    return f"GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


@pytest.fixture(params=MODELS)
def model(request):
    need_model(request.param)
    return request.param


def start(drover, model, app=None, *args):
    return drover("so:" + (app or ECHO_SO), "-k", model, "-w", "1", *args)


def test_keepalive_two_requests(drover, model):
    keepalive_model(model)
    d = start(drover, model)
    with connect(d.port) as s:
        for target in ("/one", "/two"):
            s.sendall(get_req(target))
            head, body, rest = read_response(s)
            assert status_of(head) == 200
            assert json.loads(body)["target"] == target
            assert header(head, "connection") != "close"
            assert rest == b""


def test_pipelined_answered_in_order(drover, model):
    keepalive_model(model)
    d = start(drover, model)
    with connect(d.port) as s:
        s.sendall(get_req("/first") + get_req("/second"))
        head1, body1, rest = read_response(s)
        head2, body2, rest = read_response(s, rest)
        assert json.loads(body1)["target"] == "/first"
        assert json.loads(body2)["target"] == "/second"
        assert rest == b""


def test_expect_100_continue(drover, model):
    d = start(drover, model)
    body = b"x" * 1000
    with connect(d.port) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        head, _, rest = read_response(s)
        assert status_of(head) == 100, head
        s.sendall(body)
        head, got, _ = read_response(s, rest)
        assert status_of(head) == 200
        assert json.loads(got)["body"] == body.decode()


def test_chunked_body_in_and_out(drover, model):
    d = start(drover, model)
    payload = b"abcdefghij" * 10000  # 100 kB: the answer outgrows drover's hold buffer
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 7000]), payload[i:i + 7000])
                      for i in range(0, len(payload), 7000))
    with connect(d.port) as s:
        s.sendall(b"POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        head, got, _ = read_response(s, timeout=10)
    assert status_of(head) == 200
    assert "chunked" in (header(head, "transfer-encoding") or "")
    assert json.loads(got)["body"] == payload.decode()


def test_slow_header_client_is_closed(drover, model):
    d = start(drover, model, None, "--set", "http.header_timeout=1")
    t0 = time.monotonic()
    closed = False
    with connect(d.port, timeout=10) as s:
        for ch in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n":
            try:
                s.sendall(bytes([ch]))
                s.settimeout(1.0)
                data = s.recv(4096)
                if data == b"" or status_of(data) in (408, 400):
                    closed = True
                    break
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
    assert closed, "a client sending a byte a second was served or kept"
    assert time.monotonic() - t0 < 8
    # the worker is still serving others
    assert status_of(d.http(get_req(extra="Connection: close\r\n"))) == 200


def test_smuggling_te_and_cl_rejected(drover, model):
    d = start(drover, model)
    resp = d.http(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status_of(resp) == 400, resp[:200]
    assert b"/smuggled" not in resp


def test_drain_finishes_inflight_without_reset(drover, model):
    d = start(drover, model, None, "--set", "server.graceful_timeout=10")
    with connect(d.port, timeout=10) as s:
        if model != "sync":
            s.sendall(get_req("/warm"))
            head, _, _ = read_response(s)
            assert status_of(head) == 200
        s.sendall(get_req("/?sleep=1000"))
        time.sleep(0.3)  # the request is inside the app (it sleeps 1 s)
        d.signal(signal.SIGTERM)
        head, body, rest = read_response(s, timeout=10)  # ECONNRESET would raise
        assert status_of(head) == 200
        assert json.loads(body)["query"] == "sleep=1000"
        assert header(head, "connection") == "close"
        assert s.recv(10) == b""  # then a clean EOF, not a reset
    assert d.wait_exit(15) == 0


def test_thread_idle_keepalive_does_not_block(drover):
    """20 idle keep-alive clients against 2 request threads: a new client is
    still answered at once (gunicorn's gthread stalls here)."""
    need_model("thread")
    d = drover("so:" + HELLO_SO, "-k", "thread", "-w", "1", "--threads", "2",
               "--set", "worker.keepalive=30")
    idle = []
    try:
        for _ in range(20):
            s = connect(d.port)
            s.sendall(get_req())
            head, _, _ = read_response(s)
            assert status_of(head) == 200
            idle.append(s)
        t0 = time.monotonic()
        with connect(d.port, timeout=3) as s:
            s.sendall(get_req(extra="Connection: close\r\n"))
            head, body, _ = read_response(s, timeout=3)
        assert status_of(head) == 200
        assert time.monotonic() - t0 < 1.0
        for s in idle:  # and the idle ones still work
            s.sendall(get_req())
            head, _, _ = read_response(s)
            assert status_of(head) == 200
    finally:
        for s in idle:
            s.close()


def test_thread_requests_run_concurrently(drover):
    """Two slow requests on two connections run on two threads at once."""
    need_model("thread")
    d = drover("so:" + ECHO_SO, "-k", "thread", "-w", "1", "--threads", "2")
    a, b = connect(d.port), connect(d.port)
    try:
        t0 = time.monotonic()
        a.sendall(get_req("/?sleep=800"))
        b.sendall(get_req("/?sleep=800"))
        for s in (a, b):
            head, _, _ = read_response(s)
            assert status_of(head) == 200
        assert time.monotonic() - t0 < 1.5
    finally:
        a.close()
        b.close()


# ------------------------------------------------- event-model engineer's tests
# Raw-socket tests over every worker model; a model this build lacks is skipped.
import os as _os
import signal as _signal
import socket as _socket
import time as _time

import pytest as _pytest

from conftest import ECHO_SO as _ECHO_SO, HELLO_SO as _HELLO_SO
from conftest import run_drover as _run_drover, status_of as _status_of

_MODELS = ["sync", "thread", "event"]
_AVAILABLE = {}


def _need_model(model):
    if model not in _AVAILABLE:
        rc, out, err = _run_drover("-k", model, "--check-config", "so:" + _HELLO_SO)
        _AVAILABLE[model] = "not available yet" not in (out + err)
    if not _AVAILABLE[model]:
        _pytest.skip(f"worker class {model} is not available yet")


def _keepalive_model(model):
    _need_model(model)
    if model == "sync":
        _pytest.skip("the sync model closes the connection after each response")


def _connect(d, timeout=5):
    s = _socket.create_connection((d.host, d.port), timeout=timeout)
    return s


def _read_response(s, timeout=5):
    """One whole response (Content-Length or chunked) from s: (head, body, rest)."""
    buf = b""
    deadline = _time.monotonic() + timeout
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            lower = head.lower()
            body_start = end + 4
            if "transfer-encoding: chunked" in lower:
                body, used = _dechunk(buf[body_start:])
                if used is not None:
                    return head, body, buf[body_start + used:]
            else:
                n = 0
                for line in lower.split("\r\n"):
                    if line.startswith("content-length:"):
                        n = int(line.split(":", 1)[1])
                if len(buf) - body_start >= n:
                    return head, buf[body_start:body_start + n], buf[body_start + n:]
        left = deadline - _time.monotonic()
        if left <= 0:
            raise AssertionError(f"no complete response within {timeout}s: {buf[:300]!r}")
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {buf[:300]!r}")
        buf += chunk


def _dechunk(data):
    """(decoded, bytes used) or (None, None) if incomplete."""
    out, pos = b"", 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None, None
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            if data[pos:pos + 2] != b"\r\n":
                return None, None
            return out, pos + 2
        if len(data) < pos + size + 2:
            return None, None
        out += data[pos:pos + size]
        pos += size + 2


def _wait_closed(s, timeout):
    """Seconds until the peer closed s cleanly (EOF); raises on a reset."""
    t0 = _time.monotonic()
    s.settimeout(timeout)
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return _time.monotonic() - t0


def _get(path="/", extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


@_pytest.mark.parametrize("model", _MODELS)
def test_models_keepalive(drover, model):
    _keepalive_model(model)
    d = drover("so:" + _HELLO_SO, "-k", model, "-w", "1")
    with _connect(d) as s:
        for _ in range(3):
            s.sendall(_get())
            head, body, rest = _read_response(s)
            assert head.startswith("HTTP/1.1 200"), head
            assert "connection: close" not in head.lower()
            assert body == b"Hello, World!\n" and rest == b""


@_pytest.mark.parametrize("model", _MODELS)
def test_models_pipelining_in_order(drover, model):
    _keepalive_model(model)
    d = drover("so:" + _ECHO_SO, "-k", model, "-w", "1")
    with _connect(d) as s:
        s.sendall(_get("/a") + _get("/b?x=1") + _get("/c"))
        rest = b""
        for want in ("/a", "/b?x=1", "/c"):
            head, body, rest2 = _read_response(_Prefixed(s, rest))
            rest = rest2
            assert head.startswith("HTTP/1.1 200"), head
            assert f'"target": "{want}"'.encode() in body, body


class _Prefixed:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, s, first):
        self.s, self.first = s, first

    def settimeout(self, t):
        self.s.settimeout(t)

    def recv(self, n):
        if self.first:
            b, self.first = self.first, b""
            return b
        return self.s.recv(n)


@_pytest.mark.parametrize("model", _MODELS)
def test_models_expect_continue(drover, model):
    _need_model(model)
    d = drover("so:" + _ECHO_SO, "-k", model, "-w", "1")
    with _connect(d) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        s.settimeout(5)
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        s.sendall(b"hello")
        head, body, _ = _read_response(_Prefixed(s, interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]))
        assert head.startswith("HTTP/1.1 200"), head
        assert b'"body": "hello"' in body


@_pytest.mark.parametrize("model", _MODELS)
def test_models_chunked_in_and_out(drover, model):
    _need_model(model)
    d = drover("so:" + _ECHO_SO, "-k", model, "-w", "1")
    payload = b"0123456789abcdef" * 8192  # 128 KiB: the JSON answer is > 64 KiB
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 10000]), payload[i:i + 10000])
                      for i in range(0, len(payload), 10000))
    with _connect(d) as s:
        s.sendall(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        head, body, _ = _read_response(s, timeout=10)
    assert head.startswith("HTTP/1.1 200"), head
    assert "transfer-encoding: chunked" in head.lower()
    assert b'"body": "' + payload + b'"' in body


@_pytest.mark.parametrize("model", _MODELS)
def test_models_smuggling_te_cl_rejected(drover, model):
    _need_model(model)
    d = drover("so:" + _ECHO_SO, "-k", model, "-w", "1")
    resp = d.http(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    assert _status_of(resp) == 400, resp
    assert b"/smuggled" not in resp


@_pytest.mark.parametrize("model", _MODELS)
def test_models_slow_client_header_timeout(drover, model, request):
    _need_model(model)
    d = drover("so:" + _HELLO_SO, "-k", model, "-w", "1", "--header-timeout", "1")
    with _connect(d) as s:
        t0 = _time.monotonic()
        closed = None
        for ch in b"GET / HTTP/1.1\r\nHost: slow-client-test\r\n":
            try:
                s.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = _time.monotonic() - t0
                break
            s.settimeout(0.25)
            try:
                s.recv(4096)  # EOF (or any answer) ends it
                closed = _time.monotonic() - t0
                break
            except _socket.timeout:
                pass
            except ConnectionResetError:
                closed = _time.monotonic() - t0
                break
        assert closed is not None, "a client sending a byte every 0.25 s was never closed"
        assert 0.9 <= closed <= 3.0, closed


@_pytest.mark.parametrize("model", _MODELS)
def test_models_drain_without_reset(drover, model):
    _need_model(model)
    d = drover("so:" + _ECHO_SO, "-k", model, "-w", "1", "--graceful-timeout", "10")
    idle = None
    if model != "sync":
        idle = _connect(d)
        idle.sendall(_get("/idle"))
        head, _, _ = _read_response(idle)
        assert head.startswith("HTTP/1.1 200")
    if model == "sync":  # its only thread must be free for the slow request
        pass
    with _connect(d, timeout=10) as s:
        s.sendall(_get("/?sleep=1000"))
        _time.sleep(0.3)  # the request must be in the app when TERM lands
        d.signal(_signal.SIGTERM)
        head, body, _ = _read_response(s, timeout=10)
        assert head.startswith("HTTP/1.1 200"), head
        assert "connection: close" in head.lower(), head
        assert b'"query": "sleep=1000"' in body
        assert _wait_closed(s, 5) < 5
    if idle is not None:
        with idle:
            assert _wait_closed(idle, 5) < 5  # EOF, not ECONNRESET
    assert d.wait_exit(15) == 0


@_pytest.mark.parametrize("model", _MODELS)
def test_models_worker_connections_cap(drover, model):
    _keepalive_model(model)
    d = drover("so:" + _HELLO_SO, "-k", model, "-w", "1", "--worker-connections", "2",
               "--threads", "2")
    held = []
    for _ in range(2):
        s = _connect(d)
        s.sendall(_get())
        assert _read_response(s)[0].startswith("HTTP/1.1 200")
        held.append(s)
    third = _connect(d)  # completes in the kernel's queue, not served yet
    third.sendall(_get())
    third.settimeout(0.7)
    with _pytest.raises(_socket.timeout):
        third.recv(4096)
    held.pop().close()
    head, _, _ = _read_response(third)
    assert head.startswith("HTTP/1.1 200")
    for s in held + [third]:
        s.close()


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@_pytest.mark.parametrize("model", _MODELS)
def test_models_slow_reader_bounded_memory(drover, model):
    _keepalive_model(model)
    d = drover("so:" + _ECHO_SO, "-k", model, "-w", "1")
    worker = d.wait_workers(1)[0]
    before = _rss_kb(worker)
    body = b"x" * (1 << 20)
    req = (b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    s = _connect(d)
    s.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 65536)
    s.setblocking(False)
    sent, deadline = 0, _time.monotonic() + 3
    data = req * 64  # 64 MiB of requests, 64+ MiB of answers: never read
    while _time.monotonic() < deadline and sent < len(data):
        try:
            sent += s.send(data[sent:sent + 262144])
        except BlockingIOError:
            _time.sleep(0.02)
    grown = _rss_kb(worker) - before
    assert sent < len(data), "the server kept reading although nobody read its answers"
    assert grown < 48 * 1024, f"worker RSS grew by {grown} KiB for a client that never reads"
    # The worker still serves others meanwhile.
    resp = d.http(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert _status_of(resp) == 200
    s.close()
