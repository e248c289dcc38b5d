"""Clients for large transfers, shared by test_event_large.py and
test_progress_timeout.py: read a large response at a given pace (fast, slow,
bursty) or never, and send a body slowly.  The test apps bigbody.c and
big_body.py fill piece k of their body with 'a' + k % 26, so expected() gives
the exact bytes to compare with.  A small SO_RCVBUF keeps the client's
buffering small, so that the server meets a full socket (EAGAIN) early even
with small bodies: the case the tests are about."""
import os
import socket
import time

from conftest import BUILD

BIGBODY_SO = os.path.join(BUILD, "tests", "bigbody.so")
SMALL_RCVBUF = 32 * 1024


def expected(size, piece):
    return b"".join(bytes([97 + k % 26]) * min(piece, size - off)
                    for k, off in enumerate(range(0, size, piece)))


def connect(port, rcvbuf=SMALL_RCVBUF, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


class Pace:
    """How a client takes bytes: rate (bytes/s, None: as fast as it can);
    burst/pause: after every burst bytes, stop reading for pause seconds."""

    def __init__(self, rate=None, burst=None, pause=0.0, chunk=16384):
        self.rate, self.burst, self.pause, self.chunk = rate, burst, pause, chunk
        self.t0 = time.monotonic()
        self.total = 0
        self.since_pause = 0

    def took(self, n):
        self.total += n
        self.since_pause += n
        if self.rate:
            ahead = self.total / self.rate - (time.monotonic() - self.t0)
            if ahead > 0:
                time.sleep(ahead)
        if self.burst and self.since_pause >= self.burst:
            self.since_pause = 0
            time.sleep(self.pause)


class Reader:
    """Buffered reads from a socket, paced."""

    def __init__(self, sock, pace=None):
        self.s, self.pace, self.buf = sock, pace or Pace(), b""

    def _more(self):
        d = self.s.recv(self.pace.chunk)
        if not d:
            raise EOFError("connection closed")
        self.pace.took(len(d))
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        ln, _, self.buf = self.buf.partition(b"\r\n")
        return ln

    def exact(self, n, out):
        """Append n bytes to the bytearray out (as many as came, on EOF)."""
        while n > 0:
            if not self.buf:
                self._more()
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            out += take
            n -= len(take)


def read_response(r):
    """(status, headers dict with lower-case names, body bytearray).  A body
    cut short raises EOFError with .body set to what came."""
    status = int(r.line().split()[1])
    headers = {}
    while True:
        ln = r.line()
        if not ln:
            break
        k, _, v = ln.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = bytearray()
    try:
        if "content-length" in headers:
            r.exact(int(headers["content-length"]), body)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                n = int(r.line().split(b";")[0], 16)
                if n == 0:
                    while r.line():
                        pass
                    break
                r.exact(n, body)
                r.line()
    except (EOFError, ConnectionError, socket.timeout) as e:
        err = EOFError(f"body cut short after {len(body)} bytes: {e!r}")
        err.body = body
        raise err from None
    return status, headers, body


def get(port, target, pace=None, keepalive=False, rcvbuf=SMALL_RCVBUF, timeout=20,
        sock=None):
    """GET target; (status, headers, body).  keepalive: leave the connection
    open and also return it (status, headers, body, sock)."""
    s = sock or connect(port, rcvbuf, timeout)
    conn = "" if keepalive else "Connection: close\r\n"
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\n{conn}\r\n".encode())
    try:
        res = read_response(Reader(s, pace))
    except BaseException:
        s.close()
        raise
    if keepalive:
        return res + (s,)
    s.close()
    return res
