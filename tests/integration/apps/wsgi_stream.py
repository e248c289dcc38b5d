"""WSGI app for tests/integration/test_streaming.py and test_bodiless.py.

/stream?n=N&gap=S&how=iter|write&log=PATH
    N events "data: i\\n\\n", S seconds apart, from an iterable with close()
    (how=iter) or through the write() callable (how=write).  With log, each
    event handed over appends "y I TIME" and the end appends "close TIME"
    (close() of the iterable, or the return after write() raised).
/list?n=N       N items of 1000 bytes in a list: complete without waiting.
/status/NNN?how=list|iter|write|file&cl=L
    status "NNN X" with the body b"BODY-BYTES" given the way how says,
    and Content-Length: L when cl is given.
/readbody       reads wsgi.input whole, then answers 200 with its length.
"""
import tempfile
import time
from urllib.parse import parse_qs


def _q(environ):
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def _log(path, line):
    if path:
        with open(path, "a") as f:
            f.write("%s %.6f\n" % (line, time.time()))


class Events:
    """An iterable that sleeps between its events and records close()."""

    def __init__(self, n, gap, log):
        self.n, self.gap, self.log, self.i = n, gap, log, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= self.n:
            raise StopIteration
        if self.i:
            time.sleep(self.gap)
        item = b"data: %d\n\n" % self.i
        _log(self.log, "y %d" % self.i)
        self.i += 1
        return item

    def close(self):
        _log(self.log, "close")


def stream(environ, start_response):
    q = _q(environ)
    n, gap, log = int(q.get("n", "6")), float(q.get("gap", "0.5")), q.get("log")
    headers = [("Content-Type", "text/event-stream")]
    if q.get("how") != "write":
        start_response("200 OK", headers)
        return Events(n, gap, log)
    write = start_response("200 OK", headers)
    try:
        for i in range(n):
            if i:
                time.sleep(gap)
            write(b"data: %d\n\n" % i)
            _log(log, "y %d" % i)
    except OSError:
        pass  # the client went away: stop
    _log(log, "close")
    return []


def status(environ, start_response):
    q = _q(environ)
    code = environ["PATH_INFO"].rsplit("/", 1)[1]
    headers = [("Content-Type", "text/plain")]
    if "cl" in q:
        headers.append(("Content-Length", q["cl"]))
    how = q.get("how", "list")
    body = b"BODY-BYTES"
    write = start_response(code + " X", headers)
    if how == "write":
        write(body)
        return []
    if how == "iter":
        return iter([body[:4], body[4:]])
    if how == "file":
        f = tempfile.TemporaryFile()  # a real file: sent with sendfile
        f.write(body)
        f.seek(0)
        return environ["wsgi.file_wrapper"](f)
    return [body]


def listed(environ, start_response):
    n = int(_q(environ).get("n", "3"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"x" * 1000] * n


def readbody(environ, start_response):
    data = environ["wsgi.input"].read()
    body = b"%d\n" % len(data)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/status/"):
        return status(environ, start_response)
    route = {"/stream": stream, "/list": listed, "/readbody": readbody}.get(path)
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such route\n"]
    return route(environ, start_response)


app = application
