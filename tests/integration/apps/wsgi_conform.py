"""WSGI app for tests/integration/test_wsgi_conformance.py: one route per
PEP 3333 behaviour under test.  Query parameters steer each route."""
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

_local = threading.local()


def _q(environ):
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def _text(start_response, body, status="200 OK", ctype="text/plain"):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def env(environ, start_response):
    """The environ as JSON: str values as they are, others by type/repr."""
    out = {}
    for k, v in environ.items():
        out[k] = v if isinstance(v, str) else {"type": type(v).__name__, "repr": repr(v)}
    out["wsgi.input.has"] = [m for m in ("read", "readline", "readlines", "__iter__")
                             if hasattr(environ["wsgi.input"], m)]
    out["wsgi.errors.has"] = [m for m in ("write", "writelines", "flush")
                              if hasattr(environ["wsgi.errors"], m)]
    environ["wsgi.errors"].write("wsgi.errors works\n")
    environ["wsgi.errors"].writelines(["line ", "two\n"])
    environ["wsgi.errors"].flush()
    return _text(start_response, json.dumps(out).encode(), ctype="application/json")


def path_bytes(environ, start_response):
    """PATH_INFO and a header value back as the bytes they stand for."""
    body = json.dumps({
        "path": environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace"),
        "path_latin1": environ["PATH_INFO"],
        "hdr": environ.get("HTTP_X_TEXT", ""),
    }).encode()
    return _text(start_response, body)


def echo(environ, start_response):
    """read() in pieces of ?n= bytes (all at once without n)."""
    inp, n = environ["wsgi.input"], int(_q(environ).get("n", "-1"))
    parts = []
    while True:
        b = inp.read(n) if n > 0 else inp.read()
        if not b:
            break
        parts.append(b)
        if n <= 0:
            break
    data = b"".join(parts)
    import hashlib
    return _text(start_response, json.dumps({"len": len(data), "md5": hashlib.md5(data).hexdigest(),
                                             "head": data[:64].decode("latin-1")}).encode())


def lines(environ, start_response):
    """readline(), readline(size), readlines(), iteration."""
    inp = environ["wsgi.input"]
    first = inp.readline()
    sized = inp.readline(3)
    second = inp.readlines(1)
    rest = [line for line in inp]
    body = json.dumps([x.decode() for x in [first, sized] + second] + ["|"] +
                      [x.decode() for x in rest]).encode()
    return _text(start_response, body)


def write_api(environ, start_response):
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    w(b"written;")
    return [b"returned"]


def generator(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        for i in range(int(_q(environ).get("n", "5"))):
            yield b"chunk %d\n" % i
            yield b""
    return gen()


class Closing:
    """A body whose close() touches ?marker=; ?size= bytes in 64 KiB items."""

    def __init__(self, marker, size):
        self.marker, self.size = marker, size

    def __iter__(self):
        block = b"x" * 65536
        sent = 0
        while sent < self.size:
            yield block
            sent += len(block)

    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed\n")


def closing(environ, start_response):
    q = _q(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Closing(q["marker"], int(q.get("size", "10")))


def exc_info_before(environ, start_response):
    try:
        raise KeyError("handled")
    except KeyError:
        start_response("200 OK", [("X-First", "1")])
        start_response("503 Replaced", [("X-Second", "2")], sys.exc_info())
    return [b"replaced"]


def exc_info_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"partial"
        try:
            raise ValueError("after headers")
        except ValueError:
            start_response("500 Error", [], sys.exc_info())  # re-raises
        yield b"never"
    return gen()


def file_wrapper(environ, start_response):
    q = _q(environ)
    f = open(q["path"], "rb")
    f.seek(int(q.get("skip", "0")))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f, 4096)


def file_wrapper_nofd(environ, start_response):
    import io
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"0123456789" * 1000), 333)


def boom(environ, start_response):
    raise RuntimeError("boom in app")


def bad_status(environ, start_response):
    start_response(200, [])
    return [b"x"]


def bad_status_text(environ, start_response):
    start_response("OK", [])
    return [b"x"]


def interim_status(environ, start_response):
    # a 1xx is interim (RFC 9110 section 15.2): never the final answer
    start_response("103 Early Hints", [("Link", "</s.css>; rel=preload")])
    return [b"x"]


def bad_header_value(environ, start_response):
    start_response("200 OK", [("X-Num", 5)])
    return [b"x"]


def bad_header_unicode(environ, start_response):
    start_response("200 OK", [("X-Snow", "\u2603")])
    return [b"x"]


def bad_header_list(environ, start_response):
    start_response("200 OK", {"X-A": "b"})
    return [b"x"]


def str_body(environ, start_response):
    start_response("200 OK", [])
    return "a str is not bytes"


def none_body(environ, start_response):
    start_response("200 OK", [])
    return None


def no_start(environ, start_response):
    return [b"forgot start_response"]


def latin1_header(environ, start_response):
    start_response("200 OK", [("X-Latin", "caf\u00e9"), ("Content-Length", "2")])
    return [b"ok"]


def slow_handler(environ, start_response):
    """Sleeps ?ms= (for the SIGUSR2 stack dump test)."""
    time.sleep(int(_q(environ).get("ms", "2000")) / 1000)
    return _text(start_response, b"slept\n")


def thread_local(environ, start_response):
    _local.n = getattr(_local, "n", 0) + 1
    return _text(start_response, json.dumps({"n": _local.n, "tid": threading.get_ident()}).encode())


ROUTES = {
    "/env": env, "/echo": echo, "/lines": lines, "/write": write_api, "/gen": generator,
    "/closing": closing, "/exc_before": exc_info_before, "/exc_after": exc_info_after,
    "/file": file_wrapper, "/file_nofd": file_wrapper_nofd, "/boom": boom,
    "/bad_status": bad_status, "/bad_status_text": bad_status_text,
    "/interim_status": interim_status,
    "/bad_header_value": bad_header_value, "/bad_header_unicode": bad_header_unicode,
    "/bad_header_list": bad_header_list, "/str_body": str_body, "/none_body": none_body,
    "/no_start": no_start, "/latin1_header": latin1_header, "/slow": slow_handler,
    "/local": thread_local,
}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        if environ["PATH_INFO"].startswith("/p/"):
            return path_bytes(environ, start_response)
        return _text(start_response, b"Hello, World!\n")
    return route(environ, start_response)
