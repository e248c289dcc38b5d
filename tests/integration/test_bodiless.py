"""Responses that must not have a body (RFC 9112 §6.3, RFC 9110 §15.3.5,
§15.4.5) in every worker model: a response to HEAD, a 204 or 304 ends at
its header section whatever the app yields, writes or sends from a file,
and whatever Content-Length it sets (a HEAD's or 304's is kept, a 204's
dropped); the connection stays in step for the next, pipelined, request.
An app that gives a 1xx as its answer gets an error (WSGI: a 500; C: the
status call fails): a 1xx is interim, and a client would wait for the
final response forever (RFC 9110 §15.2).  And a response after which the
server closes says "Connection: close" (RFC 9112 §9.6)."""
import os
import re
import socket
import time

import pytest

from conftest import BUILD, wait_until

MODELS = ["sync", "thread", "event"]
STREAM_SO = os.path.join(BUILD, "tests", "stream_app.so")
WSGI = "wsgi_stream:application"
WSGI_HOWS = ["list", "iter", "write", "file"]
C_HOWS = ["write", "sendfile", "both"]


def cases(hows):
    """(method, status, how, app Content-Length or None) of every variant."""
    out = []
    for how in hows:
        for st in (204, 304, 100, 103):
            for cl in (None, "10", "99"):
                out.append(("GET", st, how, cl))
        for cl in (None, "10"):
            out.append(("HEAD", 200, how, cl))
    return out


def request(method, st, how, cl, close=False):
    q = f"how={how}" + (f"&cl={cl}" if cl else "")
    conn = "Connection: close\r\n" if close else ""
    return f"{method} /status/{st}?{q} HTTP/1.1\r\nHost: t\r\n{conn}\r\n".encode()


def read_head(sock, buf, deadline):
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed in a head: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), v.strip())
    return int(lines[0].split()[1]), hdrs, rest


def read_responses(sock, reqs, timeout=10):
    """Read one response per (method, status, ...) in reqs, strictly by the
    framing a client would use: nothing after a bodiless response's head
    but the next response.  [(status, headers, body)], and what follows."""
    deadline = time.monotonic() + timeout
    buf, out = b"", []
    for method, *_ in reqs:
        st, hdrs, buf = read_head(sock, buf, deadline)
        body = b""
        if method != "HEAD" and st >= 200 and st not in (204, 304):
            n = int(hdrs["content-length"])
            while len(buf) < n:
                chunk = sock.recv(65536)
                assert chunk, "body cut short"
                buf += chunk
            body, buf = buf[:n], buf[n:]
        out.append((st, hdrs, body))
    return out, buf


def check_bodiless(req, resp, rest_ok):
    method, st, how, cl = req
    got_st, hdrs, _ = resp
    if st < 200:  # refused as a final status: an error answer, in step
        assert got_st == 500, (req, resp)
        assert rest_ok, req
        return
    assert got_st == st, (req, resp)
    want_cl = cl if (method == "HEAD" or st == 304) else None
    if method == "HEAD" and cl is None and how in ("list", "file"):
        want_cl = "10"  # the length a GET would get
    assert hdrs.get("content-length") == want_cl, (req, hdrs)
    if method != "HEAD" or cl is not None or how in ("list", "file"):
        assert "transfer-encoding" not in hdrs, (req, hdrs)
    assert rest_ok, req


def run_cases(d, model, reqs):
    final = ("GET", 200, "write", "10")
    if model == "sync":  # one request per connection: each ends the exchange
        for r in reqs:
            with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
                s.sendall(request(*r))
                (resp,), rest = read_responses(s, [r])
                assert resp[1].get("connection") == "close"
                s.settimeout(5)
                while True:  # nothing but the close follows the head
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                check_bodiless(r, resp, rest == b"")
        return
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        # all pipelined in one write, the last one closing
        s.sendall(b"".join(request(*r) for r in reqs) + request(*final, close=True))
        resps, rest = read_responses(s, reqs + [final])
        for r, resp in zip(reqs, resps):
            assert resp[1].get("connection") != "close", (r, resp)
            check_bodiless(r, resp, True)
        st, hdrs, body = resps[-1]
        assert st == 200 and body == b"BODY-BYTES" and rest == b"", (resps[-1], rest)


@pytest.mark.parametrize("model", MODELS)
def test_wsgi_bodiless_responses_stay_in_step(drover, model):
    d = drover(WSGI, "-k", model, "-w", "1")
    run_cases(d, model, cases(WSGI_HOWS))


@pytest.mark.parametrize("model", MODELS)
def test_c_bodiless_responses_stay_in_step(drover, model):
    d = drover("so:" + STREAM_SO, "-k", model, "-w", "1")
    run_cases(d, model, cases(C_HOWS))


def read_to_eof(port, raw, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf
            buf += chunk


def test_the_issue_example(drover):
    """The wire of `GET /304` then `GET /200` (issue 8): the 304 ends at its
    head and the 200 follows in step."""
    d = drover(WSGI, "-k", "thread", "-w", "1")
    raw = read_to_eof(d.port, b"GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /status/200 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert raw.count(b"BODY-BYTES") == 1 and raw.endswith(b"\r\n\r\nBODY-BYTES"), raw
    assert re.search(rb"^HTTP/1\.1 304 X\r\n(?:[^\r\n]+\r\n)*\r\nHTTP/1\.1 200 X\r\n", raw), raw


def test_dropped_bytes_logged_once(drover):
    d = drover(WSGI, "-k", "event", "-w", "1", "--log-level", "debug")
    raw = read_to_eof(d.port, b"GET /status/204?how=iter HTTP/1.1\r\nHost: a\r\n"
                      b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 204 X") and raw.endswith(b"\r\n\r\n"), raw
    d.wait_log(r"dropped 10 body bytes of a 204 response to GET /status/204", 5)
    assert len(re.findall(r"dropped \d+ body bytes", d.log())) == 1


# ------------------------------------------------- Connection: close when closing

def exchange(port, raw, wait_close=1.0):
    """Send raw, read one response; then whether the server closed the
    connection (EOF or reset) within wait_close.  (head, closed)"""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        deadline = time.monotonic() + 10
        try:
            while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    return buf, True  # closed without (a whole) response
                buf += chunk
        except ConnectionResetError:
            return buf, True
        head = buf.split(b"\r\n\r\n")[0]
        s.settimeout(wait_close)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return head, True
        except socket.timeout:
            return head, False
        except ConnectionResetError:
            return head, True


SCENARIOS = {
    # the body never completes: reading it fails after read_timeout -> 500
    "body cut short": b"POST /readbody HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789",
    # a large body the app does not read, too large to drain
    "unread large body": b"POST /status/200?cl=10 HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n"
                         + b"x" * 300000,
    # a chunked body the app does not read (its size is unknown)
    "unread chunked body": b"POST /status/200?cl=10 HTTP/1.1\r\nHost: t\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("model", MODELS)
def test_closing_response_says_so(drover, model, scenario):
    """Whenever the server closes after a response, that response carried
    Connection: close; whenever it did not say so, the connection serves the
    next request."""
    d = drover(WSGI, "-k", model, "-w", "1", "--read-timeout", "1")
    head, closed = exchange(d.port, SCENARIOS[scenario])
    said = b"\r\nconnection: close" in head.lower()
    if head:
        assert head.startswith(b"HTTP/1.1 "), head
        assert closed == said, (head, closed)
    else:
        assert closed  # no response at all (the event model times the body out)
