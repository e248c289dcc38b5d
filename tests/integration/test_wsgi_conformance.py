"""PEP 3333 conformance of drover's WSGI adapter, for every worker model:
environ, streamed wsgi.input (Content-Length and chunked), write(), close()
(also when the client goes away), exc_info, file_wrapper, bad app output,
boot-time import errors and the SIGUSR2 Python stack dump."""
import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import get, status_of, wait_until

APP = "wsgi_conform:application"
KINDS = ["sync", "thread", "event"]


def start(drover, kind, app=APP, *args, **kw):
    """drover(app, -k kind, ...), skipping models this build does not have yet."""
    try:
        return drover(app, "-k", kind, "-w", "1", *args, **kw)
    except AssertionError as e:
        if "not available yet" in str(e):
            pytest.skip(f"worker class {kind} not available yet")
        raise


@pytest.fixture(params=KINDS)
def server(request, drover):
    return start(drover, request.param)


def body_of(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        return out
    return body


def headers_of(raw):
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
    return {k.strip().lower(): v.strip() for k, _, v in
            (line.partition(":") for line in head.split("\r\n")[1:])}


# ------------------------------------------------------------------ environ

def test_environ_keys(server):
    st, _, body = get(server.url + "/env?a=1&b=%20x", headers={
        "X-Multi": "one", "Content-Type": "text/x-test", "X-Dash-Name": "d"})
    assert st == 200
    e = json.loads(body)
    for key in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "RAW_URI"):
        assert isinstance(e[key], str), key
    assert e["REQUEST_METHOD"] == "GET"
    assert e["SCRIPT_NAME"] == ""
    assert e["PATH_INFO"] == "/env"
    assert e["QUERY_STRING"] == "a=1&b=%20x"
    assert e["RAW_URI"] == "/env?a=1&b=%20x"
    assert e["SERVER_PORT"] == str(server.port)
    assert e["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert e["REMOTE_ADDR"] == "127.0.0.1"
    assert int(e["REMOTE_PORT"]) > 0
    assert e["CONTENT_TYPE"] == "text/x-test"
    assert "HTTP_CONTENT_TYPE" not in e
    assert e["HTTP_X_DASH_NAME"] == "d"
    assert e["wsgi.version"]["repr"] == "(1, 0)"
    assert e["wsgi.url_scheme"] == "http"
    assert e["wsgi.run_once"]["repr"] == "False"
    assert e["wsgi.input_terminated"]["repr"] == "True"
    assert e["wsgi.multiprocess"]["repr"] == "False"  # -w 1
    kind = server.cmd[server.cmd.index("-k") + 1]
    assert e["wsgi.multithread"]["repr"] == ("True" if kind == "thread" else "False")
    assert e["wsgi.input.has"] == ["read", "readline", "readlines", "__iter__"]
    assert e["wsgi.errors.has"] == ["write", "writelines", "flush"]
    assert e["wsgi.file_wrapper"]["type"] == "type"
    server.wait_log(r"wsgi\.errors works")
    server.wait_log(r"line two")


def test_repeated_and_spoofed_headers(server):
    raw = server.http(b"GET /env HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nx-multi: b\r\n"
                      b"X_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 1.2.3.4\r\n"
                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 200
    e = json.loads(body_of(raw))
    assert e["HTTP_X_MULTI"] == "a, b"
    assert e["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"  # the '_' variant is dropped
    assert e["CONTENT_LENGTH"] == "0"
    assert e["HTTP_HOST"] == "h"


def test_unicode_path_and_header(server):
    raw = server.http(b"GET /p/caf%C3%A9/a%2Fb%zz HTTP/1.1\r\nHost: h\r\n"
                      b"X-Text: caf\xe9\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 200
    r = json.loads(body_of(raw))
    assert r["path"] == "/p/caf\u00e9/a/b%zz"  # percent-decoded, latin-1 "bytes as str"
    assert r["path_latin1"] == "/p/caf\u00c3\u00a9/a/b%zz"
    assert r["hdr"] == "caf\u00e9"


def test_latin1_response_header(server):
    raw = server.http(b"GET /latin1_header HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 200
    assert b"\r\nX-Latin: caf\xe9\r\n" in raw


# ------------------------------------------------------------------ input

def test_read_content_length_body(server):
    data = os.urandom(300000)
    for n in ("", "?n=1000", "?n=100000"):
        st, _, body = get(server.url + "/echo" + n, data=data, method="POST")
        assert st == 200
        r = json.loads(body)
        import hashlib
        assert r["len"] == len(data) and r["md5"] == hashlib.md5(data).hexdigest(), n


def test_read_chunked_body(server):
    chunks = [b"hello ", b"chunked ", b"x" * 20000, b" world"]
    raw = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    resp = server.http(b"POST /echo?n=777 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n" + raw)
    assert status_of(resp) == 200
    r = json.loads(body_of(resp))
    assert r["len"] == sum(map(len, chunks))
    assert r["head"].startswith("hello chunked xxx")


def test_readline_and_iteration(server):
    text = b"first line\nabcdef\nthird\nfourth\nfifth"
    st, _, body = get(server.url + "/lines", data=text, method="POST")
    assert st == 200
    assert json.loads(body) == ["first line\n", "abc", "def\n", "|", "third\n", "fourth\n", "fifth"]
    # the same, chunked in odd places
    raw = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in
                   (text[:3], text[3:14], text[14:15], text[15:])) + b"0\r\n\r\n"
    resp = server.http(b"POST /lines HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n" + raw)
    assert json.loads(body_of(resp)) == json.loads(body)


# ------------------------------------------------------------------ output

def test_write_callable(server):
    st, _, body = get(server.url + "/write")
    assert (st, body) == (200, b"written;returned")


def test_generator_streamed(server):
    st, _, body = get(server.url + "/gen?n=50")
    assert st == 200
    assert body == b"".join(b"chunk %d\n" % i for i in range(50))


def test_close_called(server, tmp_path):
    marker = tmp_path / "closed"
    st, _, body = get(f"{server.url}/closing?marker={marker}&size=200000")
    assert st == 200 and len(body) >= 200000
    wait_until(marker.exists, 5, "close() marker")


def test_close_called_when_client_goes_away(server, tmp_path):
    marker = tmp_path / "closed"
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"GET /closing?marker={marker}&size=1000000000 HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert s.recv(1024).startswith(b"HTTP/1.1 200")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST: the next writes of the worker fail
    wait_until(marker.exists, 10, "close() after the client went away")
    assert get(server.url + "/")[0] == 200  # the worker is still serving


def test_exc_info_before_headers(server):
    st, h, body = get(server.url + "/exc_before")
    assert (st, body) == (503, b"replaced")
    assert h["X-Second"] == "2" and h.get("X-First") is None


def test_exc_info_after_headers_aborts(server):
    raw = server.http(b"GET /exc_after HTTP/1.1\r\nHost: h\r\n\r\n")
    assert b"never" not in raw
    # The adapter returns -1: drover answers 500 if "partial" was still in its
    # buffer, else it cuts the response (no final chunk) and closes.
    if status_of(raw) == 200:
        assert not raw.endswith(b"0\r\n\r\n")
    else:
        assert status_of(raw) == 500
    server.wait_log(r"Error handling request GET /exc_after")
    server.wait_log(r"ValueError: after headers")


def test_file_wrapper_sendfile(server, tmp_path):
    data = os.urandom(100000)
    p = tmp_path / "blob"
    p.write_bytes(data)
    for skip in (0, 12345):
        st, h, body = get(f"{server.url}/file?path={p}&skip={skip}")
        assert st == 200 and body == data[skip:]


def test_file_wrapper_without_fileno(server):
    st, _, body = get(server.url + "/file_nofd")
    assert st == 200 and body == b"0123456789" * 1000


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("path,why", [
    ("/boom", r"RuntimeError: boom in app"),
    ("/bad_status", r"status must be str"),
    ("/bad_status_text", r"status must look like '200 OK'"),
    ("/interim_status", r"status must look like '200 OK'"),
    ("/bad_header_value", r"header 0 value must be str"),
    ("/bad_header_unicode", r"is not latin-1 text"),
    ("/bad_header_list", r"headers must be a list"),
    ("/str_body", r"body items must be bytes, not str"),
    ("/none_body", r"TypeError: 'NoneType' object is not iterable"),
    ("/no_start", r"without calling start_response"),
])
def test_app_errors_give_500_and_a_log_line(server, path, why):
    mark = server.log_mark()
    st, _, body = get(server.url + path)
    assert st == 500
    assert b"Traceback" not in body  # never leaked to the client
    server.wait_log(r"Error handling request GET " + re.escape(path), since=mark)
    server.wait_log(why, since=mark)
    assert get(server.url + "/")[0] == 200


def test_thread_state_kept_per_thread(server):
    # threading.local survives between requests served by the same thread
    seen = {}
    for _ in range(20):
        r = json.loads(get(server.url + "/local")[2])
        seen[r["tid"]] = max(seen.get(r["tid"], 0), r["n"])
    assert max(seen.values()) > 1


@pytest.mark.parametrize("kind", KINDS)
def test_stack_dump_on_sigusr2(drover, kind):
    d = start(drover, kind)
    worker = d.wait_workers(1)[0]
    done = []
    t = threading.Thread(target=lambda: done.append(get(d.url + "/slow?ms=3000", timeout=10)))
    t.start()

    # The request is in the app once slow_handler shows in a dump: retry until.
    mark = d.log_mark()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        os.kill(worker, signal.SIGUSR2)
        try:
            d.wait_log(r'line \d+ in slow_handler', timeout=0.5, since=mark)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("no Python stack naming slow_handler; log:\n" + d.log()[-3000:])
    t.join(10)
    assert done and done[0][0] == 200  # the dump did not disturb the request


# ------------------------------------------------------------------ boot

def test_import_error_preload_exits_once(drover):
    d = drover("wsgi_import_error:application", "--preload", "-w", "2", wait=False)
    status = d.wait_exit(15)
    assert status != 0
    log = d.log()
    assert len(re.findall(r"cannot import wsgi_import_error", log)) == 1, log
    assert "No module named 'drover_no_such_module_for_tests'" in log


def test_import_error_without_preload_exits(drover):
    d = drover("wsgi_import_error:application", "-w", "1", wait=False)
    status = d.wait_exit(30)
    assert status != 0
    assert "cannot import wsgi_import_error: ModuleNotFoundError" in d.log()


def test_missing_callable(drover):
    d = drover("wsgi_conform:no_such_app", "--preload", wait=False)
    assert d.wait_exit(15) != 0
    assert "cannot find no_such_app in module wsgi_conform" in d.log()


def test_spec_forms(drover):
    for spec in ("python:wsgi_conform:application", "wsgi_conform"):
        d = drover(spec, "-w", "1")
        assert get(d.url + "/")[2] == b"Hello, World!\n"
        d.stop()


def test_pythonpath_and_ignored_environment(drover, tmp_path):
    (tmp_path / "pp_app.py").write_text(
        "import sys, json\n"
        "def application(e, sr):\n"
        "    sr('200 OK', [])\n"
        "    return [json.dumps(sys.path).encode()]\n")
    d = drover("pp_app:application", "-w", "1", "--set", f"python.pythonpath={tmp_path}",
               env={"PYTHONPATH": "/nonexistent/pp", "PYTHONHOME": "/nonexistent/home"})
    path = json.loads(get(d.url + "/")[2])
    assert path[0] == str(tmp_path)
    assert "/nonexistent/pp" not in path
    assert any(p.endswith("dist-packages") for p in path)
