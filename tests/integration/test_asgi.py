"""The asgi worker model (issue 17) with Debian's python3-starlette and
python3-fastapi: JSON, path and query parameters, a streamed request body, a
streamed response (events arriving as sent), a background task, lifespan
order, a disconnect ending the app's stream, an exception as 500, the stall
watchdog naming a blocking call in an async handler, and HUP/TTOU/
max_requests under load with no failed request."""
import json
import os
import re
import signal
import socket
import time

import pytest

from conftest import Load, get, wait_until

pytest.importorskip("starlette")
pytest.importorskip("fastapi")

APPS = os.path.join(os.path.dirname(__file__), "apps")


def events(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@pytest.fixture
def star(drover, tmp_path):
    ev = str(tmp_path / "events")
    d = drover("asgi_starlette:app", "-k", "asgi", "-w", "1", cwd=APPS, env={"ASGI_EVENTS": ev})
    d.events = ev
    return d


def test_starlette_json_params_and_body(star):
    st, h, body = get(star.url + "/")
    assert st == 200 and body == b"hello from starlette\n"
    st, h, body = get(star.url + "/items/42?q=caf%C3%A9")
    assert st == 200 and h["Content-Type"] == "application/json"
    assert json.loads(body) == {"id": 42, "q": "café", "path": "/items/42"}
    st, _, body = get(star.url + "/echo", data=b'{"a": [1, 2]}', method="POST",
                      headers={"Content-Type": "application/json"})
    assert st == 200 and json.loads(body) == {"a": [1, 2]}
    assert get(star.url + "/nowhere")[0] == 404
    # a 1 MiB body arrives in several http.request events (streamed, not buffered whole)
    data = os.urandom(1 << 20)
    st, _, body = get(star.url + "/upload", data=data, method="POST")
    assert st == 200
    got = json.loads(body)
    assert got["size"] == len(data) and got["chunks"] > 1, got
    # the same body chunked, on the raw wire
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"a" * 100, b"b" * 5000)) + b"0\r\n\r\n"
    resp = star.http(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n" + chunks)
    assert resp.startswith(b"HTTP/1.1 200") and b'"size":5100' in resp, resp


def test_streaming_response_arrives_as_sent(star):
    s = socket.create_connection(("127.0.0.1", star.port), timeout=10)
    try:
        t0 = time.monotonic()
        s.sendall(b"GET /ticks?n=3&delay=0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"tick 0" not in buf:
            buf += s.recv(65536)
        first = time.monotonic() - t0
        while not buf.endswith(b"0\r\n\r\n"):
            buf += s.recv(65536)
        total = time.monotonic() - t0
    finally:
        s.close()
    assert b"transfer-encoding: chunked" in buf.lower()
    assert first < 0.45 and total >= 1.0, (first, total)
    assert buf.index(b"tick 0") < buf.index(b"tick 1") < buf.index(b"tick 2")


def test_background_task_and_lifespan_order(star):
    st, _, body = get(star.url + "/background?tag=abc")
    assert st == 200 and body == b"queued\n"
    wait_until(lambda: any(e.endswith("background abc") for e in events(star.events)), 10,
               "the background task ran")
    assert star.stop() == 0
    ev = [e.split(" ", 1)[1] for e in events(star.events)]
    assert ev[0] == "startup" and ev[-1] == "shutdown", ev
    assert ev.index("background abc") < ev.index("shutdown")


def test_disconnect_ends_the_stream(star):
    s = socket.create_connection(("127.0.0.1", star.port), timeout=10)
    s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while len(got) < 20000:
        got += s.recv(65536)
    s.close()
    wait_until(lambda: any("stream ended" in e for e in events(star.events)), 10,
               "the app's stream ended on http.disconnect")
    assert get(star.url + "/")[0] == 200


def test_keepalive_and_pipelining_in_order(star):
    s = socket.create_connection(("127.0.0.1", star.port), timeout=10)
    try:
        s.sendall(b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n[1,2,3]")
        buf = b""
        while not buf.endswith(b"[1,2,3]"):
            buf += s.recv(65536)
        assert buf.count(b"HTTP/1.1 200 OK") == 3 and b"connection: close" not in buf.lower()
        assert buf.index(b'"id":1') < buf.index(b'"id":2') < buf.index(b"[1,2,3]")
    finally:
        s.close()


@pytest.fixture
def fast(drover):
    return drover("asgi_fastapi:app", "-k", "asgi", "-w", "1", "--stall-threshold", "100ms",
                  cwd=APPS)


def test_fastapi_params_body_and_errors(fast):
    st, _, body = get(fast.url + "/users/7?verbose=true&q=x")
    assert st == 200 and json.loads(body) == {"user_id": 7, "verbose": True, "q": "x"}
    assert get(fast.url + "/users/notanint")[0] == 422
    st, _, body = get(fast.url + "/items", method="POST",
                      data=json.dumps({"name": "pen", "price": 1.5, "tags": ["a"]}).encode(),
                      headers={"Content-Type": "application/json"})
    assert st == 200 and json.loads(body) == {"name": "pen", "total": 3.0, "tags": ["a"]}
    mark = fast.log_mark()
    st, h, body = get(fast.url + "/boom")
    assert st == 500 and h["Connection"] == "close"
    fast.wait_log(r"Exception in ASGI application during GET /boom from 127\.0\.0\.1:\d+", since=mark)
    fast.wait_log(r"RuntimeError: boom in handler", since=mark)
    assert get(fast.url + "/")[0] == 200


def test_blocking_call_in_async_handler_is_named(fast):
    mark = fast.log_mark()
    st, _, _ = get(fast.url + "/rates?ms=400", timeout=10)
    assert st == 200
    line = fast.wait_log(r"stall (\d+) ms in worker 1 \(pid \d+\) at fetch_rates "
                         r"\(asgi_fastapi\.py:\d+\) during GET /rates\?ms=400 from 127\.0\.0\.1",
                         since=mark)
    assert 100 <= int(line.group(1)) <= 400
    fast.wait_log(r"stall ended after \d+ ms in worker 1 .* at fetch_rates", since=mark)
    # awaiting is no stall
    mark = fast.log_mark()
    assert get(fast.url + "/nap?ms=300")[0] == 200
    assert get(fast.url + "/")[0] == 200
    assert "] stall" not in fast.log()[mark:]


def test_lifespan_failure_is_a_boot_failure(drover, tmp_path):
    app = tmp_path / "failing_lifespan.py"
    app.write_text(
        "async def app(scope, receive, send):\n"
        "    assert scope['type'] == 'lifespan'\n"
        "    await receive()\n"
        "    await send({'type': 'lifespan.startup.failed', 'message': 'no database'})\n")
    d = drover("failing_lifespan:app", "-k", "asgi", "-w", "1", cwd=str(tmp_path), wait=False)
    d.wait_log(r"ASGI lifespan startup failed: no database", timeout=10)


@pytest.mark.parametrize("action", ["hup", "ttou", "max_requests"])
def test_reload_shrink_and_recycle_under_load(drover, action):
    args = ["-k", "asgi", "-w", "2", "--graceful-timeout", "10"]
    if action == "max_requests":
        args += ["--max-requests", "40"]
    d = drover("asgi_fastapi:app", *args, cwd=APPS)
    old = d.wait_workers(2)
    with Load(d.url + "/nap?ms=5", threads=4) as load:
        if action == "hup":
            d.signal(signal.SIGHUP)
            wait_until(lambda: not set(d.workers()) & set(old) and len(d.workers()) == 2, 20,
                       "workers replaced")
        elif action == "ttou":
            d.signal(signal.SIGTTOU)
            d.wait_workers(1, timeout=20)
        else:
            wait_until(lambda: not set(d.workers()) & set(old), 30, "workers recycled")
        ok = load.ok
        wait_until(lambda: load.ok > ok + 20, 10, "load goes on")
    assert load.failures == [], load.failures[:5]
