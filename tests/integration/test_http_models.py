"""HTTP/1.1 behaviour shared by the worker models (sync, thread, event), on
raw sockets against the real binary: keep-alive, pipelining, 100-continue,
chunked bodies both ways, slow clients, smuggling, drain without reset, the
worker_connections cap, a slow reader's memory, and serving without a failed
request across HUP, TTOU and max_requests recycling; then what only the
thread model promises.  A model this build does not have yet
(`drover -k MODEL --check-config` says "not available yet") is skipped.

Shared file: add test functions parametrized over MODELS (the `model`
fixture); keep helpers model-neutral.
"""
import json
import select
import signal
import socket
import threading
import time

import pytest

from conftest import ECHO_SO, HELLO_SO, run_drover, status_of, wait_until

MODELS = ["sync", "thread", "event"]
_available = {}


# ---------------------------------------------------------------- helpers

def need_model(model):
    """Skip unless this build has the worker model."""
    if model not in _available:
        rc, out, err = run_drover("-k", model, "--check-config", "so:" + HELLO_SO)
        _available[model] = "not available yet" not in (out + err)
    if not _available[model]:
        pytest.skip(f"worker model {model} not available yet")


def keepalive_model(model):
    """sync closes after each request (gunicorn's sync): nothing to keep."""
    need_model(model)
    if model == "sync":
        pytest.skip("the sync model answers Connection: close")


@pytest.fixture(params=MODELS)
def model(request):
    need_model(request.param)
    return request.param


def start(drover, model, app=None, *args):
    """One worker of model serving app (echo by default)."""
    return drover("so:" + (app or ECHO_SO), "-k", model, "-w", "1", *args)


def connect(d, timeout=5):
    s = socket.create_connection((d.host, d.port), timeout=timeout)
    s.settimeout(timeout)
    return s


class ConnectionClosed(EOFError):
    """The peer closed (cleanly) before a whole response; .got holds what
    had arrived of it."""

    def __init__(self, got):
        super().__init__(f"connection closed; got {got[:300]!r}")
        self.got = got


def read_response(s, buf=b"", timeout=5):
    """Read one whole response from s, starting with the bytes in buf (read
    earlier); return (head, body, rest): head the status line and fields
    (bytes, without the blank line), body de-chunked, rest the bytes after
    it (a pipelined next response).  A clean close first raises
    ConnectionClosed, a reset ConnectionResetError, silence past timeout
    AssertionError."""
    deadline = time.monotonic() + timeout
    got = buf

    def more():
        nonlocal buf, got
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no complete response within {timeout}s: {got[:300]!r}")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no complete response within {timeout}s: {got[:300]!r}") from None
        if not chunk:
            raise ConnectionClosed(got)
        buf += chunk
        got += chunk

    while b"\r\n\r\n" not in buf:
        more()
    head, _, buf = buf.partition(b"\r\n\r\n")
    status = status_of(head)
    if status is not None and (100 <= status < 200 or status in (204, 304)):
        return head, b"", buf
    h = head.decode("latin-1").lower()
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
                assert buf[:2] == b"\r\n", f"trailers or junk after the last chunk: {buf[:100]!r}"
                return head, body, buf[2:]
            assert buf[n:n + 2] == b"\r\n", f"chunk not followed by CRLF: {buf[n:n + 20]!r}"
            body += buf[:n]
            buf = buf[n + 2:]
    while True:  # close-delimited
        try:
            more()
        except ConnectionClosed:
            return head, buf, b""


def header(head, name):
    """The value of field name in head (bytes), or None."""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def says_close(head):
    return (header(head, "connection") or "").lower() == "close"


def get_req(target="/", extra=""):
    return f"GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def wait_closed(s, timeout):
    """Seconds until the peer closed s cleanly (EOF); a reset raises
    ConnectionResetError, bytes instead of EOF fail."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    chunk = s.recv(4096)
    assert chunk == b"", f"bytes where EOF was expected: {chunk[:200]!r}"
    return time.monotonic() - t0


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------ keep-alive, pipelining

def test_keepalive(drover, model):
    """Three requests on one connection, each answered whole, none closing
    it (sync: one answer with Connection: close, then EOF)."""
    d = start(drover, model)
    h = start(drover, model, HELLO_SO)
    with connect(d) as s, connect(h) as t:
        for target in ("/one", "/two", "/three"):
            s.sendall(get_req(target))
            head, body, rest = read_response(s)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert json.loads(body)["target"] == target
            assert rest == b""
            t.sendall(get_req())
            head2, body2, rest2 = read_response(t)
            assert head2.startswith(b"HTTP/1.1 200"), head2
            assert body2 == b"Hello, World!\n" and rest2 == b""
            if model == "sync":
                assert says_close(head) and says_close(head2), (head, head2)
                assert wait_closed(s, 5) < 5 and wait_closed(t, 5) < 5
                return
            assert header(head, "connection") != "close"
            assert b"connection: close" not in head.lower(), head
            assert b"connection: close" not in head2.lower(), head2


def test_pipelined_answered_in_order(drover, model):
    keepalive_model(model)
    d = start(drover, model)
    wants = ("/first", "/b?x=1", "/c")
    with connect(d) as s:
        s.sendall(b"".join(get_req(w) for w in wants))
        rest = b""
        for want in wants:
            head, body, rest = read_response(s, rest)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert json.loads(body)["target"] == want
        assert rest == b""


# ------------------------------------------------------- request bodies

def test_expect_100_continue(drover, model):
    d = start(drover, model)
    body = b"x" * 1000
    with connect(d) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        head, _, rest = read_response(s)
        assert status_of(head) == 100, head
        assert head + b"\r\n\r\n" == b"HTTP/1.1 100 Continue\r\n\r\n", head
        assert rest == b"", rest  # nothing but the interim answer before the body
        s.sendall(body)
        head, got, _ = read_response(s, rest)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(got)["body"] == body.decode()


def test_chunked_body_in_and_out(drover, model):
    d = start(drover, model)
    payload = b"0123456789abcdef" * 8192  # 128 KiB: echo.so streams an answer over 64 KiB in pieces
    sizes, chunks, i = (7000, 10000), [], 0
    while i < len(payload):  # chunks of two sizes, so their edges fall all over
        part = payload[i:i + sizes[len(chunks) % 2]]
        chunks.append(b"%x\r\n%s\r\n" % (len(part), part))
        i += len(part)
    with connect(d) as s:
        s.sendall(b"POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" + b"".join(chunks) + b"0\r\n\r\n")
        head, got, _ = read_response(s, timeout=10)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert "chunked" in (header(head, "transfer-encoding") or "")
    assert b"transfer-encoding: chunked" in head.lower()
    assert json.loads(got)["body"] == payload.decode()


def test_smuggling_te_and_cl_rejected(drover, model):
    d = start(drover, model)
    for cl in (4, 5):
        resp = d.http(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                      b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n" % cl)
        assert status_of(resp) == 400, resp[:200]
        assert b"/smuggled" not in resp


# ------------------------------------------------------- slow clients

def test_slow_header_client_is_closed(drover, model):
    """A client trickling its head a byte every 0.25 s is closed when the
    1 s header timeout runs out, and the worker keeps serving others."""
    d = start(drover, model, HELLO_SO, "--header-timeout", "1")
    closed = None
    with connect(d, timeout=10) as s:
        t0 = time.monotonic()
        for ch in b"GET / HTTP/1.1\r\nHost: slow-client-test\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n":
            try:
                s.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - t0
                break
            s.settimeout(0.25)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = time.monotonic() - t0
                break
            assert data == b"" or status_of(data) in (408, 400), data[:200]
            closed = time.monotonic() - t0
            break
    assert closed is not None, "a client sending a byte every 0.25 s was served or kept"
    assert 0.9 <= closed <= 3.0, closed
    # the worker is still serving others
    assert status_of(d.http(get_req(extra="Connection: close\r\n"))) == 200


def test_slow_reader_bounded_memory(drover, model):
    """A client that sends 64 MiB of requests and never reads an answer is
    stopped by back-pressure: the worker's memory stays bounded and it still
    serves others."""
    keepalive_model(model)
    d = start(drover, model)
    worker = d.wait_workers(1)[0]
    before = rss_kb(worker)
    body = b"x" * (1 << 20)
    req = (b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    s = connect(d)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.setblocking(False)
        sent, deadline = 0, time.monotonic() + 3
        data = req * 64  # 64 MiB of requests, 64+ MiB of answers: never read
        while time.monotonic() < deadline and sent < len(data):
            try:
                sent += s.send(data[sent:sent + 262144])
            except BlockingIOError:
                time.sleep(0.02)
        grown = rss_kb(worker) - before
        assert sent < len(data), "the server kept reading although nobody read its answers"
        assert grown < 48 * 1024, f"worker RSS grew by {grown} KiB for a client that never reads"
        # The worker still serves others meanwhile.
        resp = d.http(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert status_of(resp) == 200
    finally:
        s.close()


# ------------------------------------------------------- connection cap

def test_worker_connections_cap(drover, model):
    """--worker-connections 2: a third connection waits in the queue until
    one of the two held ones goes, then is served."""
    keepalive_model(model)
    d = start(drover, model, HELLO_SO, "--worker-connections", "2", "--threads", "2")
    held = []
    third = None
    try:
        for _ in range(2):
            s = connect(d)
            held.append(s)
            s.sendall(get_req())
            assert read_response(s)[0].startswith(b"HTTP/1.1 200")
        third = connect(d)  # completes in the kernel's queue, not served yet
        third.sendall(get_req())
        third.settimeout(0.7)
        with pytest.raises(socket.timeout):
            third.recv(4096)
        held.pop().close()
        head, _, _ = read_response(third)
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        for s in held + [third]:
            if s is not None:
                s.close()


# ------------------------------------------------------- drain

def test_drain_finishes_inflight_without_reset(drover, model):
    """TERM while a request is in the app: it is answered whole with
    Connection: close, then a clean EOF; an idle keep-alive connection gets
    a clean EOF too (not ECONNRESET); the master exits 0."""
    # keepalive 2: the idle connection ends at its keepalive deadline (a
    # drain does not close idle connections early), sooner than 5 s
    d = start(drover, model, None, "--graceful-timeout", "10", "--keepalive", "2")
    idle = None
    try:
        if model != "sync":
            idle = connect(d)
            idle.sendall(get_req("/idle"))
            head, _, _ = read_response(idle)
            assert head.startswith(b"HTTP/1.1 200"), head
        with connect(d, timeout=10) as s:
            if model != "sync":  # the slow request comes on a reused connection
                s.sendall(get_req("/warm"))
                head, _, _ = read_response(s)
                assert head.startswith(b"HTTP/1.1 200"), head
            s.sendall(get_req("/?sleep=1000"))
            time.sleep(0.3)  # the request must be in the app (it sleeps 1 s) when TERM lands
            d.signal(signal.SIGTERM)
            head, body, rest = read_response(s, timeout=10)  # ECONNRESET would raise
            assert head.startswith(b"HTTP/1.1 200"), head
            assert json.loads(body)["query"] == "sleep=1000"
            assert header(head, "connection") == "close"
            assert b"connection: close" in head.lower(), head
            assert rest == b""
            assert wait_closed(s, 5) < 5  # then a clean EOF, not a reset
        if idle is not None:
            assert wait_closed(idle, 5) < 5  # EOF, not ECONNRESET
    finally:
        if idle is not None:
            idle.close()
    assert d.wait_exit(15) == 0


# ------------------------------------------- no failed request across a change

class ClientLoop:
    """`clients` threads looping GETs against d until stopped, each on a
    keep-alive connection where the server keeps it alive.  A failure is a
    reset, a truncated or wrong answer, a refused or dropped fresh
    connection, or a timeout.  Like a real client with an idempotent
    request, a reused connection that the server closed cleanly before
    answering a byte (seen before sending, or a bare EOF after) is retried
    once on a fresh connection: that is counted in `retries`, not failed."""

    def __init__(self, d, clients=4):
        self.d = d
        self.clients = clients
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.ok_reused = 0
        self.retries = 0
        self.idle_closes = 0
        self.failures = 0
        self.messages = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(15)
        assert not any(t.is_alive() for t in self.threads), "a client thread hangs"

    def served(self):
        with self.lock:
            return self.ok

    def _fail(self, msg):
        with self.lock:
            self.failures += 1
            if len(self.messages) < 10:
                self.messages.append(msg)

    def report(self):
        return (f"{self.ok} ok ({self.ok_reused} on reused connections), {self.failures} "
                f"failed, {self.retries} retried, {self.idle_closes} idle closes; "
                f"first failures: {self.messages}")

    @staticmethod
    def _peer_closed(s):
        """Before sending on a reused connection: True if the server closed it
        (EOF waiting); raise on a reset or on bytes nobody asked for."""
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        if data:
            raise AssertionError(f"unsolicited bytes on an idle connection: {data!r}")
        return True

    def _run(self, cid):
        s, reused, n = None, False, 0
        while not self.stop_ev.is_set():
            target = f"/c{cid}/{n}"
            try:
                if s is not None and self._peer_closed(s):
                    s.close()
                    s = None
                    with self.lock:
                        self.idle_closes += 1
                if s is None:
                    s, reused = connect(self.d), False
                s.sendall(get_req(target))
                head, body, rest = read_response(s)
            except ConnectionClosed as e:
                s.close()
                s = None
                if reused and not e.got:
                    with self.lock:
                        self.retries += 1
                    continue  # the same request again, on a fresh connection
                self._fail(f"{target}: closed after {len(e.got)} bytes on a "
                           f"{'reused' if reused else 'fresh'} connection: {e.got[:200]!r}")
                n += 1
                continue
            except (OSError, AssertionError) as e:
                if s is not None:
                    s.close()
                s = None
                self._fail(f"{target} ({'reused' if reused else 'fresh'} connection): {e!r}")
                n += 1
                continue
            n += 1
            try:
                assert head.startswith(b"HTTP/1.1 200"), head
                assert json.loads(body)["target"] == target, body[:200]
                assert rest == b"", rest[:200]
                if says_close(head):
                    wait_closed(s, 5)  # the server's clean close, no reset
            except (OSError, AssertionError, ValueError) as e:
                s.close()
                s = None
                self._fail(f"{target}: {e!r}")
                continue
            with self.lock:
                self.ok += 1
                self.ok_reused += reused
            if says_close(head):
                s.close()
                s = None
            else:
                reused = True
        if s is not None:
            s.close()


def run_loop_around(d, model, change, done, min_seconds=2.0, clients=4):
    """Loop requests against d for at least min_seconds: call change() after
    0.5 s, poll done() until true (10 s at most), keep going 0.3 s more on
    what came out of it.  Assert not one request failed, requests were served
    after the change was done, and (not sync) connections were reused."""
    loop = ClientLoop(d, clients).start()
    t0 = time.monotonic()
    try:
        wait_until(lambda: loop.served() >= 20 or loop.failures, 5, "the client loop to get going")
        time.sleep(max(0.0, t0 + 0.5 - time.monotonic()))  # serving before the change
        change()
        wait_until(done, 10, "the change to complete")
        after = loop.served()
        time.sleep(max(0.3, t0 + min_seconds - time.monotonic()))  # and serving after it
    finally:
        loop.stop()
    print(f"{model}: {time.monotonic() - t0:.2f}s, {loop.report()}")
    assert loop.failures == 0, loop.report()
    assert loop.ok > after, f"nothing served after the change: {loop.report()}"
    if model != "sync":
        assert loop.ok_reused > 0, f"no keep-alive reuse: {loop.report()}"
    return loop


def test_hup_under_load_no_failed_request(drover, model):
    """HUP while clients loop requests: every worker is replaced and not one
    request fails."""
    d = drover("so:" + ECHO_SO, "-k", model, "-w", "2", "--graceful-timeout", "10")
    old = set(d.wait_workers(2))

    def replaced():
        now = set(d.workers())
        return len(now) == 2 and not (now & old)

    run_loop_around(d, model, lambda: d.signal(signal.SIGHUP), replaced)
    assert not (set(d.wait_workers(2)) & old)
    assert d.alive()


def test_ttou_under_load_no_failed_request(drover, model):
    """TTOU from 2 workers to 1 while clients loop requests: the stopping
    worker drains and not one request fails."""
    d = drover("so:" + ECHO_SO, "-k", model, "-w", "2", "--graceful-timeout", "10")
    old = set(d.wait_workers(2))
    mark = d.log_mark()

    def one_left():
        now = d.workers()
        return len(now) == 1 and now[0] in old

    run_loop_around(d, model, lambda: d.signal(signal.SIGTTOU), one_left)
    d.wait_log(r"TTOU: 1 workers wanted", since=mark)
    assert d.wait_workers(1)[0] in old


def test_max_requests_recycling_no_failed_request(drover, model):
    """--max-requests 100 under a keep-alive client loop: workers recycle
    over and over and not one request fails."""
    d = drover("so:" + ECHO_SO, "-k", model, "-w", "2", "--max-requests", "100",
               "--graceful-timeout", "10")
    first = set(d.wait_workers(2))
    seen = set(first)

    def recycled_some():
        seen.update(d.workers())
        return len(seen) >= len(first) + 4  # at least 4 recycles happened

    run_loop_around(d, model, lambda: None, recycled_some)
    assert len(d.wait_workers(2)) == 2
    assert d.alive()


# ------------------------------------------------------- thread model only

def test_thread_idle_keepalive_does_not_block(drover):
    """20 idle keep-alive clients against 2 request threads: a new client is
    still answered at once (gunicorn's gthread stalls here)."""
    need_model("thread")
    d = drover("so:" + HELLO_SO, "-k", "thread", "-w", "1", "--threads", "2",
               "--keepalive", "30")
    idle = []
    try:
        for _ in range(20):
            s = connect(d)
            idle.append(s)
            s.sendall(get_req())
            head, _, _ = read_response(s)
            assert status_of(head) == 200
        t0 = time.monotonic()
        with connect(d, timeout=3) as s:
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
    a, b = connect(d), connect(d)
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
