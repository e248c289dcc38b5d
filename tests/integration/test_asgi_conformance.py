"""ASGI 3.0 conformance of the asgi worker, field by field (asgi.readthedocs.io,
HTTP & WebSocket spec 2.3, and the lifespan spec): the http scope, the
http.request events, response framing from http.response.start/body,
http.disconnect, 100-continue, and what happens when the app misbehaves."""
import json
import os
import socket
import time

import pytest

from conftest import get, status_of, wait_until

APPS = os.path.join(os.path.dirname(__file__), "apps")


@pytest.fixture
def conf(drover, tmp_path):
    ev = str(tmp_path / "events")
    d = drover("asgi_conform:app", "-k", "asgi", "-w", "1", "--max-body", "64k", cwd=APPS,
               env={"ASGI_EVENTS": ev})
    d.events = ev
    return d


def events(d):
    try:
        with open(d.events) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def raw(d, data, timeout=5):
    """Send data on a new connection, read until the server closes."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while True:
            try:
                c = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not c:
                break
            buf += c
        return buf
    finally:
        s.close()


def scope_of(d, raw_req):
    resp = raw(d, raw_req)
    assert status_of(resp) == 200, resp
    return json.loads(resp.partition(b"\r\n\r\n")[2])


def test_http_scope_field_by_field(conf):
    out = scope_of(conf, b"POST /scope/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: example.org\r\n"
                         b"X-Dup: one\r\nx-dup: two\r\nContent-Length: 3\r\n"
                         b"Connection: close\r\n\r\nabc")
    s, t = out["scope"], out["types"]
    assert s["type"] == "http"
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert s["http_version"] == "1.1"
    assert s["method"] == "POST"
    assert s["scheme"] == "http"
    assert s["path"] == "/scope/café x"
    assert s["raw_path"] == {"bytes": "/scope/caf%C3%A9%20x"}
    assert s["query_string"] == {"bytes": "a=1&b=%20"}
    assert s["root_path"] == ""
    assert t["path"] == "str" and t["raw_path"] == "bytes" and t["query_string"] == "bytes"
    # headers: bytes pairs, names lowercased, order and duplicates kept
    assert out["header_types"] == ["bytes"]
    hdrs = [(h[0]["bytes"], h[1]["bytes"]) for h in s["headers"]]
    assert hdrs[:3] == [("host", "example.org"), ("x-dup", "one"), ("x-dup", "two")]
    assert ("content-length", "3") in hdrs
    assert s["client"][0] == "127.0.0.1" and isinstance(s["client"][1], int)
    assert s["server"] == ["127.0.0.1", conf.port]
    assert out["events"] == [{"type": "http.request", "body": {"bytes": "abc"},
                              "more_body": False}]


def test_http10_get_and_scheme_from_trusted_proxy(conf):
    out = scope_of(conf, b"GET /scope HTTP/1.0\r\nX-Forwarded-Proto: https\r\n\r\n")
    assert out["scope"]["http_version"] == "1.0"
    assert out["scope"]["scheme"] == "https"  # 127.0.0.1 is in forwarded_allow_ips
    assert out["scope"]["query_string"] == {"bytes": ""}
    # a request without a body still gets one http.request event
    assert out["events"] == [{"type": "http.request", "body": {"bytes": ""}, "more_body": False}]


def test_chunked_body_streams_in_events(conf):
    s = socket.create_connection(("127.0.0.1", conf.port), timeout=5)
    try:
        s.sendall(b"POST /scope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.2)  # the first chunk reaches the app on its own
        s.sendall(b"6\r\n world\r\n0\r\n\r\n")
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
    finally:
        s.close()
    ev = json.loads(buf.partition(b"\r\n\r\n")[2])["events"]
    assert b"".join(e["body"]["bytes"].encode() for e in ev) == b"hello world"
    assert all(e["more_body"] for e in ev[:-1]) and ev[-1]["more_body"] is False
    assert len(ev) >= 2, ev


def test_response_framing(conf):
    resp = raw(conf, b"GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert head.count(b"set-cookie: ") == 2 and b"x-custom: yes" in head
    assert b"Content-Length: 5" in head or b"content-length: 5" in head
    assert b"chunked" not in head.lower() and body == b"abcde"
    # 204 ends at its header section, whatever the app sends (RFC 9112 6.3)
    resp = raw(conf, b"GET /empty204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 204") and resp.endswith(b"\r\n\r\n")
    # HEAD: the GET's head, no body
    resp = raw(conf, b"HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 200") and resp.endswith(b"\r\n\r\n")


def test_receive_after_response_is_disconnect(conf):
    assert get(conf.url + "/after")[0] == 200
    wait_until(lambda: "after: http.disconnect" in events(conf), 10, "http.disconnect")


def test_client_leaving_is_http_disconnect(conf):
    s = socket.create_connection(("127.0.0.1", conf.port), timeout=5)
    s.sendall(b"GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"first" not in buf:
        buf += s.recv(65536)
    s.close()
    wait_until(lambda: "disconnect: http.disconnect" in events(conf), 10, "http.disconnect")


def test_expect_100_continue(conf):
    s = socket.create_connection(("127.0.0.1", conf.port), timeout=5)
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 4\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        assert buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), buf
        s.sendall(b"ping")
        while not buf.endswith(b"ping"):
            buf += s.recv(65536)
        assert b"HTTP/1.1 200 OK" in buf
    finally:
        s.close()
    # an app that answers without reading: no 100, and the connection closes
    resp = raw(conf, b"POST /headers HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 4\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 201") and b"100 Continue" not in resp
    assert b"connection: close" in resp.lower()


def test_app_errors(conf):
    mark = conf.log_mark()
    resp = raw(conf, b"GET /no-response HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 500
    conf.wait_log(r"ASGI app returned for GET /no-response .* without completing the response",
                  since=mark)
    resp = raw(conf, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 500 and b"Injected" not in resp
    conf.wait_log(r"ValueError: invalid response header x-bad", since=mark)
    resp = raw(conf, b"GET /interim-status HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 500 and b"103" not in resp.split(b"\r\n")[0]
    conf.wait_log(r"ValueError: invalid HTTP status 103", since=mark)
    # an exception after the start: the response is cut (no last chunk), the connection closed
    resp = raw(conf, b"GET /raise-after-start HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 200") and b"partial" in resp
    assert not resp.endswith(b"0\r\n\r\n")
    conf.wait_log(r"ValueError: after start", since=mark)


def test_limits_are_the_c_layers(conf):
    # refused before the app runs, as in the other models
    assert status_of(raw(conf, b"GARBAGE\r\n\r\n")) == 400
    big = b"x" * (70 * 1024)
    resp = raw(conf, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big)
               + big)
    assert status_of(resp) == 413
    smuggle = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status_of(raw(conf, smuggle)) == 400


def test_client_stalled_in_body_is_cut_off(drover):
    d = drover("asgi_conform:app", "-k", "asgi", "-w", "1", "--read-timeout", "0.5", cwd=APPS)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        t0 = time.monotonic()
        while s.recv(65536):
            pass
        waited = time.monotonic() - t0
    finally:
        s.close()
    assert 0.4 <= waited < 5, waited
    assert get(d.url + "/echo", data=b"ok", method="POST")[2] == b"ok"
