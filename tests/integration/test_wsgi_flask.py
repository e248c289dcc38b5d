"""contrib/examples/flask_app.py (Debian's python3-flask) served by drover in
every worker model: text, JSON, a streamed response, a multipart upload and
an echoed POST body."""
import json
import os
import uuid

import pytest

from conftest import REPO, get

pytest.importorskip("flask")

EXAMPLES = os.path.join(REPO, "contrib", "examples")


@pytest.fixture(params=["sync", "thread", "event"])
def flask_server(request, drover):
    try:
        return drover("flask_app:app", "-k", request.param, "-w", "2", cwd=EXAMPLES)
    except AssertionError as e:
        if "not available yet" in str(e):
            pytest.skip(f"worker class {request.param} not available yet")
        raise


def test_index(flask_server):
    st, h, body = get(flask_server.url + "/")
    assert st == 200 and body == b"Hello from Flask on drover!\n"
    assert h["Content-Type"].startswith("text/plain")


def test_json(flask_server):
    st, h, body = get(flask_server.url + "/json?x=1")
    assert st == 200 and h["Content-Type"] == "application/json"
    assert json.loads(body) == {"server": "drover", "path": "/json", "args": {"x": "1"}}


def test_stream(flask_server):
    st, _, body = get(flask_server.url + "/stream?n=100")
    assert st == 200
    assert body == b"".join(b"line %d\n" % i for i in range(100))


def test_upload_multipart(flask_server):
    payload = os.urandom(200000)
    boundary = uuid.uuid4().hex
    parts = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\n"
             f"hello field\r\n"
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"blob.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    data = parts + payload + f"\r\n--{boundary}--\r\n".encode()
    st, _, body = get(flask_server.url + "/upload", data=data, method="POST",
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert st == 200, body
    assert json.loads(body) == {"filename": "blob.bin", "size": len(payload), "field": "hello field"}


def test_echo(flask_server):
    data = os.urandom(70000)
    st, _, body = get(flask_server.url + "/echo", data=data, method="POST",
                      headers={"Content-Type": "application/octet-stream"})
    assert st == 200 and body == data


def test_echo_chunked(flask_server):
    raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    resp = flask_server.http(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
                             b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + raw)
    assert resp.startswith(b"HTTP/1.1 200")
    assert resp.endswith(b"hello world")


def test_404(flask_server):
    assert get(flask_server.url + "/nope")[0] == 404
