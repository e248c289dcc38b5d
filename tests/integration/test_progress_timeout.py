"""`timeout` measures being stuck, not being busy (issue 8, part 6).  In the
thread and event models a request that moves bytes either way (a slow
reader, a slow upload) keeps its heartbeat fresh however long it lasts; a
client that stops reading is closed by send_timeout, that connection only,
never the worker.  The sync model keeps gunicorn's meaning: the whole
request within `timeout`."""
import socket
import threading
import time

import pytest

from conftest import run_drover, wait_until
from large_io import (BIGBODY_SO, SMALL_RCVBUF, Pace, Reader, connect, expected, get,
                      read_response)

MB = 1 << 20
C_APP = "so:" + BIGBODY_SO
APPS = {"c": C_APP, "wsgi": "big_body:app"}


def need_model(model):
    rc, out, err = run_drover("-k", model, "--check-config", C_APP)
    if rc != 0 and "not available" in out + err:
        pytest.skip(f"model {model} not built")


def served_by_same_worker(d, pids):
    assert d.workers() == pids, f"worker replaced: {pids} -> {d.workers()}"
    assert "timed out" not in d.log()


@pytest.mark.parametrize("model,app", [("thread", "c"), ("thread", "wsgi"), ("event", "c")])
def test_slow_reader_is_not_stuck(drover, model, app):
    """The issue's input scaled down: app blocks of 6 MiB, a reader at
    4 MiB/s.  The server's send buffer (up to 4 MiB) absorbs part; sending
    the rest of one block still takes longer than timeout."""
    need_model(model)
    d = drover(APPS[app], "-k", model, "-w", "1", "--timeout", "1")
    pids = d.wait_workers(1)
    size, piece = 12 * MB, 6 * MB
    res = get(d.port, f"/?size={size}&piece={piece}", Pace(rate=4 * MB))
    assert res[0] == 200 and len(res[2]) == size, f"{len(res[2])} of {size} bytes"
    assert res[2] == expected(size, piece)
    served_by_same_worker(d, pids)


@pytest.mark.parametrize("model", ["thread", "event"])
def test_slow_upload_is_not_stuck(drover, model):
    """A body dribbled in over ~2.5 s against timeout 1: served in full."""
    need_model(model)
    d = drover(C_APP, "-k", model, "-w", "1", "--timeout", "1")
    pids = d.wait_workers(1)
    piece, n = 16384, 20
    s = connect(d.port, rcvbuf=None)
    s.sendall(f"POST /?size=10 HTTP/1.1\r\nHost: t\r\nContent-Length: {piece * n}\r\n"
              "Connection: close\r\n\r\n".encode())
    for _ in range(n):
        s.sendall(b"u" * piece)
        time.sleep(0.12)  # the pace of the upload, not a synchronisation
    status, headers, body = _read(s)
    assert status == 200, (status, headers)
    assert headers.get("x-body-read") == str(piece * n), headers
    served_by_same_worker(d, pids)


def _read(s):
    try:
        return read_response(Reader(s))
    finally:
        s.close()


def server_side_state(port, client_port):
    """TCP state (hex string from /proc/net/tcp) of the server's end of the
    connection from client_port, or None once it is gone."""
    want_local, want_rem = f":{port:04X}", f":{client_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want_local) and parts[2].endswith(want_rem):
                return parts[3]
    return None


@pytest.mark.parametrize("model", ["thread", "event"])
def test_reader_that_stops_loses_its_connection_only(drover, model):
    """A client that takes nothing is closed after send_timeout (2 s, longer
    than timeout 1); meanwhile the same worker serves others and is never
    timed out."""
    need_model(model)
    d = drover(C_APP, "-k", model, "-w", "1", "--threads", "2", "--timeout", "1",
               "--send-timeout", "2")
    pids = d.wait_workers(1)
    size = 16 * MB
    s = connect(d.port, rcvbuf=SMALL_RCVBUF)
    s.sendall(f"GET /?size={size} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    t0 = time.monotonic()
    client_port = s.getsockname()[1]
    ESTABLISHED = "01"

    def closed_by_server():
        # Others are served by the same worker while this one stalls.
        assert get(d.port, "/?size=100")[0] == 200
        return server_side_state(d.port, client_port) not in (ESTABLISHED,)
    wait_until(closed_by_server, 15, "the stalled connection closed", interval=0.1)
    took = time.monotonic() - t0
    assert took >= 1.5, f"closed after {took:.2f}s, send_timeout is 2s"
    # What was in flight still arrives, then the connection ends short.
    got = 0
    s.settimeout(10)
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += len(b)
    except (ConnectionError, socket.timeout):
        pass
    s.close()
    assert got < size, "the whole body arrived: the connection was never cut"
    served_by_same_worker(d, pids)


def test_sync_timeout_bounds_the_whole_request(drover):
    """gunicorn's meaning in the sync model: a busy transfer longer than
    timeout is still timed out (one slow client holds the only thread)."""
    d = drover(C_APP, "-k", "sync", "-w", "1", "--timeout", "1")
    size = 12 * MB  # beyond the socket buffers: the worker is busy ~2 s
    with pytest.raises(EOFError):
        get(d.port, f"/?size={size}", Pace(rate=4 * MB))
    d.wait_log(r"worker 1 \(pid \d+\) timed out", timeout=10)


def test_slow_clients_do_not_hold_back_others(drover):
    """Thread model, one worker: two slow readers longer than timeout and
    quick requests in between all succeed, with no worker replaced."""
    need_model("thread")
    d = drover(C_APP, "-k", "thread", "-w", "1", "--threads", "4", "--timeout", "1")
    pids = d.wait_workers(1)
    results, size = [], 10 * MB

    def slow():
        results.append(get(d.port, f"/?size={size}&piece={size}", Pace(rate=4 * MB)))
    ts = [threading.Thread(target=slow, daemon=True) for _ in range(2)]
    for t in ts:
        t.start()
    while any(t.is_alive() for t in ts):
        assert get(d.port, "/?size=10")[0] == 200
        time.sleep(0.1)  # pace of the quick requests
    for t in ts:
        t.join(30)
    assert [len(r[2]) for r in results] == [size, size]
    served_by_same_worker(d, pids)
