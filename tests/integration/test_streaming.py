"""PEP 3333 "Buffering and Streaming" in every worker model, for WSGI apps
(an iterable that sleeps between items, and the write() callable) and a C
app that writes pieces over time: the head and the first block go out at
once (chunked, since there is no length), each block as it comes, and a
client that leaves stops the app within about one block (the write fails,
iteration stops, close() is called).  A list is complete without waiting
and gets an exact Content-Length."""
import os
import re
import socket
import tempfile
import threading
import time
from urllib.parse import quote

import pytest

from conftest import BUILD, wait_until

MODELS = ["sync", "thread", "event"]
KINDS = ["wsgi-iter", "wsgi-write", "c"]
STREAM_SO = os.path.join(BUILD, "tests", "stream_app.so")
N, GAP = 4, 0.3  # a stream of N events GAP seconds apart: ends (N-1)*GAP after its start


def app_of(kind):
    return "so:" + STREAM_SO if kind == "c" else "wsgi_stream:application"


def how(kind):
    return "&how=write" if kind == "wsgi-write" else ""


def start(drover, model, kind, *args):
    extra = {"sync": ["-w", "2"], "thread": ["-w", "1", "--threads", "4"],
             "event": ["-w", "1"]}[model]
    return drover(app_of(kind), "-k", model, *extra, *args)


class Stream:
    """One client reading a streamed response, with the arrival time of its
    head and of each "data: i" event (seconds since the request was sent)."""

    def __init__(self, port, target, close=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.head = None
        self.head_at = None
        self.events = {}
        self.t0 = time.monotonic()
        conn = b"Connection: close\r\n" if close else b""
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (target.encode(), conn))

    def _note(self):
        now = time.monotonic() - self.t0
        if self.head is None and b"\r\n\r\n" in self.buf:
            self.head = self.buf.split(b"\r\n\r\n", 1)[0]
            self.head_at = now
        for m in re.finditer(rb"data: (\d+)\n\n", self.buf):
            self.events.setdefault(int(m.group(1)), now)

    def read_until(self, done, timeout=10):
        """Read until done(self) or EOF; True at EOF."""
        deadline = time.monotonic() + timeout
        while not done(self):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("stream stalled: got %r" % self.buf[-300:])
            if not chunk:
                return True
            self.buf += chunk
            self._note()
        return False

    def body_complete(self):
        return self.head is not None and self.buf.endswith(b"\r\n0\r\n\r\n")

    def close(self):
        self.sock.close()


def read_all(streams, timeout=10):
    """Read every stream to its end at once, each in its own thread (the
    arrival times must be those of the wire).  The errors raised."""
    errors = []

    def read(s):
        try:
            s.read_until(Stream.body_complete, timeout)
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=read, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return errors


def check_streamed(s, n=N, gap=GAP):
    """The head and first event came at once, the others as the app made them."""
    head = s.head.decode("latin-1").lower()
    assert "transfer-encoding: chunked" in head and "content-length" not in head, head
    assert sorted(s.events) == list(range(n)), s.events
    first, last = s.events[0], s.events[n - 1]
    # Held back, everything would arrive together after (n-1)*gap = 0.9 s.
    assert first < (n - 1) * gap * 0.67, f"first event after {first:.2f}s"
    assert s.head_at <= first
    assert last - first > (n - 1) * gap * 0.67, f"events not spread out: {s.events}"
    for i in range(1, n):
        assert s.events[i] >= s.events[0] + i * gap * 0.5, f"event {i} early: {s.events}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", MODELS)
def test_stream_arrives_as_it_comes(drover, model, kind):
    """Two clients at once (one where the model has one connection per
    worker, event) with and without keep-alive: every stream arrives event
    by event; the kept connection carries the next request in step."""
    d = start(drover, model, kind)
    target = f"/stream?n={N}&gap={GAP}{how(kind)}"
    streams = [Stream(d.port, target)]
    if model != "event":
        streams.append(Stream(d.port, target, close=True))
    errors = read_all(streams)
    try:
        assert not errors, errors
        for s in streams:
            check_streamed(s)
        kept = streams[0]
        if model == "sync":  # no keep-alive in the sync model: it says so
            assert b"connection: close" in kept.head.lower()
        else:
            assert b"connection: close" not in kept.head.lower()
            kept.buf = b""
            kept.head = None
            kept.events = {}
            kept.t0 = time.monotonic()
            kept.sock.sendall(b"GET /stream?n=2&gap=0%s HTTP/1.1\r\nHost: t\r\n\r\n"
                              % how(kind).encode())
            kept.read_until(Stream.body_complete)
            assert kept.buf.startswith(b"HTTP/1.1 200"), kept.buf[:200]
            assert sorted(kept.events) == [0, 1]
        if len(streams) > 1:
            closed = streams[1]
            assert b"connection: close" in closed.head.lower()
            assert closed.read_until(lambda s: False, timeout=5)  # then EOF
    finally:
        for s in streams:
            s.close()


def test_event_streams_of_several_clients(drover):
    """The event model runs the app on the loop thread: a sleeping stream
    holds its worker between blocks, so streams that share a worker take
    turns.  Each still arrives block by block, and all of them end."""
    d = drover("wsgi_stream:application", "-k", "event", "-w", "2")
    streams = [Stream(d.port, f"/stream?n={N}&gap={GAP}") for _ in range(3)]
    try:
        errors = read_all(streams, timeout=15)
        assert not errors, errors
        for s in streams:
            assert sorted(s.events) == list(range(N))
            assert s.events[N - 1] - s.events[0] > (N - 1) * GAP * 0.67, s.events
    finally:
        for s in streams:
            s.close()


def test_list_gets_exact_length(drover):
    """A list is complete without waiting: Content-Length, not chunked."""
    d = drover("wsgi_stream:application", "-k", "thread", "-w", "1")
    raw = d.http(b"GET /list?n=70 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\nContent-Length: 70000\r\n" in head, head
    assert b"chunked" not in head.lower() and body == b"x" * 70000


def read_log(path):
    """[(what, index or None, time)] from an app's stream log."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                out.append((p[0], int(p[1]), float(p[2])))
            elif len(p) == 2:
                out.append((p[0], None, float(p[1])))
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", MODELS)
def test_disconnect_stops_the_app(drover, model, kind):
    """100 events 0.1 s apart, a client that leaves after 1 s: the next
    writes fail, the app stops and close() runs within about one block,
    not at the end of the stream 9 s later; the worker serves on."""
    d = start(drover, model, kind)
    fd, log = tempfile.mkstemp(prefix="drover-stream-")
    os.close(fd)
    try:
        s = Stream(d.port, f"/stream?n=100&gap=0.1{how(kind)}&log={quote(log, safe='')}")
        leave_at = s.t0 + 1.0
        s.read_until(lambda s: time.monotonic() >= leave_at, timeout=5)
        assert 0 in s.events, "nothing streamed within 1 s"
        s.close()
        left = time.time()
        ended = wait_until(lambda: [e for e in read_log(log) if e[0] == "close"], 5,
                           "the app to stop after the client left")
        yields = [e for e in read_log(log) if e[0] == "y"]
        after = [e for e in yields if e[2] > left]
        # One block to find the peer gone, one for the write to fail: ~0.2 s.
        assert ended[0][2] - left < 1.0, f"close() {ended[0][2] - left:.2f}s after leaving"
        assert len(after) <= 5, f"{len(after)} blocks made after the client left"
        assert len(yields) < 30
        # The worker is free again (in the event model: its loop runs).
        st = d.http(b"GET /stream?n=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                    timeout=5)
        assert st.startswith(b"HTTP/1.1 200") and b"data: 0" in st, st[:200]
    finally:
        os.unlink(log)
