#!/usr/bin/python3
"""Write the seed corpora of tests/fuzz/corpus/TARGET/seed-* from the tests:
the request literals of the HTTP unit tests, the /proc and cgroup fixtures,
the example INI, and hand-picked inputs for the rest.  Regression inputs of
crashers (crash-*) are kept as found and never rewritten here.
Run from the repository root: tests/fuzz/make_seeds.py"""
import glob
import hashlib
import os
import re
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests/fuzz/corpus")


def write(target, data, name=None):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def c_literals(path):
    """Adjacent C string literals joined, escapes decoded, as bytes."""
    src = open(path, encoding="utf-8").read()
    for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"(?:\s*"(?:[^"\\\n]|\\.)*")*', src):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(0))
        raw = "".join(parts)
        yield raw.encode("latin-1").decode("unicode_escape").encode("latin-1")


def http_requests():
    seen = set()
    for t in ("test_http_parse.c", "test_http_robust.c"):
        for s in c_literals(os.path.join(ROOT, "tests/unit", t)):
            if re.match(rb"[A-Z]+ \S* HTTP/1\.[01]\r?\n", s) and s not in seen:
                seen.add(s)
                yield s


def main():
    for req in http_requests():
        write("http_request", b"\x00" + req)  # whole, default limits, keep-alive
        write("http_request", b"\x0a" + req)  # 1-byte reads, small limits
    write("http_request", b"\x01PROXY TCP4 10.0.0.1 10.0.0.2 5555 80\r\nGET / HTTP/1.1\r\n\r\n")
    v2 = (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack(">H", 12)
          + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 5555, 80))
    write("http_request", b"\x01" + v2 + b"GET / HTTP/1.1\r\n\r\n")
    write("http_request", b"\x00PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
    write("http_request", b"\x00GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n")

    # http_response: flags byte, then the app's ops (see fuzz_http_response.c)
    def s(b):
        return bytes([len(b)]) + b
    ops = {
        "ok": b"\x00" + b"\x00\x00\xc8" + s(b"OK") + b"\x01\x05" + s(b"text/plain")
              + b"\x02" + s(b"hello") + b"\x00\x03\x00",
        "length": b"\x00" + b"\x01\x00" + s(b"5") + b"\x02" + s(b"hello") + b"\x00",
        "short": b"\x00" + b"\x01\x00" + s(b"9") + b"\x02" + s(b"hello") + b"\x00",
        "crlf-value": b"\x00" + b"\x01\xff" + s(b"X-A") + s(b"a\r\nX-B: b"),
        "crlf-reason": b"\x00" + b"\x00\x00\xc8" + s(b"OK\r\n\r\nHTTP/1.1 200 OK"),
        "head-204": b"\x01" + b"\x00\x00\xcc" + s(b"") + b"\x01" + b"\x02" + s(b"body"),
        "http10": b"\x02" + b"\x02" + s(b"streamed") + b"\x02" + s(b"more"),
        "chunked-te": b"\x00" + b"\x01\x01" + s(b"chunked") + b"\x02" + s(b"x"),
        "error": b"\x00" + b"\x03\x01",
        "status-101": b"\x00" + b"\x00\x00\x65" + s(b"Switching") + b"\x02" + s(b"x"),
    }
    for name, data in ops.items():
        write("http_response", data, name)

    for f in glob.glob(os.path.join(ROOT, "tests/unit/fixtures/sample/*")):
        if not f.endswith("README"):
            write("proc", open(f, "rb").read(), os.path.basename(f))

    write("conf_ini", open(os.path.join(ROOT, "contrib/drover.ini"), "rb").read(), "drover.ini")
    write("conf_ini", b"[server]\nworkers = 4\nbind = 127.0.0.1:8000, unix:/tmp/x.sock\n"
          b"timeout = 1m30s\n[worker]\nmax_rss = 512M\n[http]\nforwarded_allow_ips = 10.0.0.0/8,*\n"
          b"[log]\naccess_log_format = %h %r %s\n[autoscale]\ntarget_utilization = 0.5\n", "small")
    write("conf_ini", b"[server]\nworkers = 0\n", "bad-range")
    write("conf_ini", b"[nosuch]\nkey = 1\n[server\nworker_class = gevent\n", "bad-section")

    argvs = {
        "flags": [b"-w", b"4", b"-b", b"127.0.0.1:8000", b"-k", b"thread", b"app:application"],
        "set": [b"--set", b"server.workers=3", b"--set", b"http.max_body=1M", b"so:x.so"],
        "gunicorn": [b"-t", b"30", b"--access-logformat", b'%(h)s %(l)s "%(r)s" %(s)s', b"-e", b"A=B", b"m:app"],
        "refused": [b"-k", b"gevent", b"--daemon"],
        "long": [b"--worker-class=event", b"--max-requests", b"10", b"--keepalive", b"2s"],
    }
    for name, words in argvs.items():
        write("cli", b"\x00" + b"\x00".join(words), name)
    write("cli", b"\x01-w 3 --bind '127.0.0.1:9000' \"a b\"\x00app:x", "env")
    write("cli", b"\x00workers\t4\nbind\t127.0.0.1:1\ntimeout\t30\n", "gunicorn-py")

    write("control", b"status\nstatus table\nmetrics\nworkers 3\nincr\ndecr\nping\n", "all")
    write("control", b"recycle 123\r\nrecycle all\nstop fast\ndoctor json\nreload\n", "more")
    write("control", b"status a b\nnosuch\n\n\t \nworkers -1\nstop", "bad")

    for req in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD /status.json?x=1 HTTP/1.0\n\n",
                b"GET / HTTP/1.1\r\n\r\n", b"POST /metrics HTTP/1.1\r\n\r\n", b"GET /x HTTP/1.1\r\n\r\n",
                b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", b"BAD\r\n\r\n"):
        write("metrics_http", b"\x07" + req)


if __name__ == "__main__":
    main()
