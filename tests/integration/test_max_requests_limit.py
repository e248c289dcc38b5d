"""max_requests holds where the request is counted (issue 8, part 5): a
worker serves at most max_requests (the thread model: plus the requests
already running in its other threads when the limit is reached, so at most
max_requests + threads - 1), under sequential and concurrent load, with new
connections and keep-alive ones, and no request fails while workers are
replaced.  Counted from the access log's %p (the serving worker's pid)."""
import collections
import socket
import threading

import pytest

from conftest import ECHO_SO, read_response

MAX = 10
THREADS = 4
APPS = {"c": "so:" + ECHO_SO, "wsgi": "drain_app:app"}


def bound(model):
    return MAX + (THREADS - 1 if model == "thread" else 0)


def start(drover, tmp_path, model, app="c", workers=1):
    log = tmp_path / "access.log"
    d = drover(APPS[app], "-k", model, "-w", str(workers), "--threads", str(THREADS),
               "--max-requests", str(MAX), "--access-log", str(log),
               "--access-log-format", "%p %s %U", wait_timeout=20)
    return d, log


def client(d, n, keepalive, results):
    """n requests, on one connection per request or on kept-alive ones
    (reconnecting when the server says close, as clients do)."""
    s = None
    for i in range(n):
        try:
            if s is None:
                s = socket.create_connection((d.host, d.port), timeout=20)
            s.sendall(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n{'' if keepalive else 'Connection: close'}"
                      f"\r\n\r\n".encode())
            st, head, _ = read_response(s)
            results.append(st)
            if not keepalive or "connection: close" in head:
                s.close()
                s = None
        except OSError as e:
            results.append(repr(e))
            if s:
                s.close()
            s = None
        except EOFError as e:
            results.append(repr(e))
            s.close()
            s = None
    if s:
        s.close()


def per_pid(d, log, total):
    """Requests per serving pid, the fixture's readiness probe included
    (it counts against the first worker's limit too)."""
    d.stop()
    lines = [ln.split() for ln in log.read_text().splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln[2].startswith("/r")]
    assert len(ours) == total, f"{len(ours)} requests logged, {total} sent"
    assert all(ln[1] == "200" for ln in lines)
    return collections.Counter(ln[0] for ln in lines)


@pytest.mark.parametrize("app", ["c", "wsgi"])
@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_sequential_requests_recycle_at_the_limit(drover, tmp_path, model, app):
    d, log = start(drover, tmp_path, model, app)
    total = 3 * MAX - 1  # with the readiness probe: three workers' worth
    results = []
    client(d, total, keepalive=(model != "sync"), results=results)
    assert results == [200] * total, results
    counts = per_pid(d, log, total)
    # One request at a time: the limit is exact.
    assert sorted(counts.values()) == [MAX] * 3, counts


@pytest.mark.parametrize("keepalive", [False, True], ids=["new-conns", "keep-alive"])
@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_concurrent_load_stays_within_the_limit(drover, tmp_path, model, keepalive):
    d, log = start(drover, tmp_path, model, workers=2)
    nclients, each = 8, 25
    results = []
    ts = [threading.Thread(target=client, args=(d, each, keepalive, results))
          for _ in range(nclients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    total = nclients * each
    assert results.count(200) == total, collections.Counter(map(str, results))
    counts = per_pid(d, log, total)
    assert max(counts.values()) <= bound(model), counts
    assert len(counts) >= total // bound(model), counts  # workers were replaced
