"""A response given before the request body is read (413 for a body over
max_body) reaches a client that is still sending the body: the server
closes with a lingering close (our FIN, the rest read away), never a plain
close() whose RST can destroy the response before the client reads it
(RFC 9112 section 9.6).  Before the fix, whenever the head arrived alone
and the body's next bytes were a moment late, every model but thread closed
at once: the client got a reset and no 413 (0 of 10 in a run; event model
10 of 30 and asgi 1 of 30 over a loop)."""
import socket
import time

import pytest

APPS = {"asgi": "asgi_conform:app"}
TRIES = 10
UPLOAD = 4 * 1024 * 1024


def upload_and_read(port):
    """(status line, error) of a 4 MiB POST sent as fast as the server
    takes it, reading whatever comes back meanwhile."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf, err, sent = b"", None, 0
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % UPLOAD)
        s.setblocking(False)
        chunk = b"x" * 65536
        deadline = time.monotonic() + 5
        while sent < UPLOAD and time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                try:
                    c = s.recv(65536)
                    if not c:
                        break
                    buf += c
                except BlockingIOError:
                    time.sleep(0.001)
        s.setblocking(True)
        s.settimeout(5)
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
    except (ConnectionResetError, BrokenPipeError) as e:
        err = e
    finally:
        s.close()
    return buf.split(b"\r\n", 1)[0], err


@pytest.mark.parametrize("model", ["sync", "thread", "event", "asgi"])
def test_413_reaches_a_client_still_uploading(drover, model):
    d = drover(APPS.get(model, "wsgi_conform:application"), "-k", model, "-w", "1",
               "--max-body", "64k")
    results = [upload_and_read(d.port) for _ in range(TRIES)]
    lost = [(line, repr(err)) for line, err in results if b" 413 " not in line + b" "]
    print(f"\n{model}: {TRIES - len(lost)} of {TRIES} uploads got their 413")
    if lost:
        print(d.log())
    assert not lost, lost
