"""Large responses against slow, bursty and fast readers at once (issue 8,
part 3).  In the event model a write watcher started inside a libev callback
used to stay unapplied while the outer epoll loop slept: a response larger
than the socket buffers stopped at a few MB.  The event and thread models
(the ones that multiplex clients on a worker) must deliver every byte, in
order, to each reader alone and to several at once on one worker, for C apps
(bigbody.so, written in pieces) and WSGI apps (big_body.py, a generator),
with Content-Length and chunked, and a keep-alive connection must stay in
step after a large response."""
import threading

import pytest

from conftest import run_drover
from large_io import BIGBODY_SO, Pace, expected, get

MB = 1 << 20
APPS = {"c": BIGBODY_SO, "wsgi": "big_body:app"}


def need_model(model):
    rc, out, err = run_drover("-k", model, "--check-config", "so:" + BIGBODY_SO)
    if rc != 0 and "not available" in out + err:
        pytest.skip(f"model {model} not built")


def run_clients(jobs, timeout=40):
    """Run each job (a callable) in its own thread; re-raise the first
    failure; all must end within timeout."""
    errors, threads = [], []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)
    for fn in jobs:
        t = threading.Thread(target=wrap, args=(fn,), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a client did not finish in time"
    if errors:
        raise errors[0]


def check_body(res, size, piece):
    status, headers, body = res[:3]
    assert status == 200, (status, headers)
    assert len(body) == size, f"{len(body)} of {size} bytes"
    assert body == expected(size, piece), "bytes out of order"


@pytest.mark.parametrize("app", ["c", "wsgi"])
@pytest.mark.parametrize("model", ["event", "thread"])
def test_large_response_every_reader(drover, model, app):
    need_model(model)
    target = "so:" + APPS[app] if app == "c" else APPS[app]
    d = drover(target, "-k", model, "-w", "1", "--threads", "4")  # one worker for all
    port = d.port

    def slow():  # 8 MiB at 4 MiB/s, far beyond the socket buffers
        check_body(get(port, f"/?size={8 * MB}", Pace(rate=4 * MB)), 8 * MB, 64 << 10)

    def bursty():  # chunked, read in bursts with pauses between
        res = get(port, f"/?size={6 * MB}&piece=100000&cl=0", Pace(burst=MB, pause=0.3))
        assert res[1].get("transfer-encoding") == "chunked", res[1]
        check_body(res, 6 * MB, 100000)

    def fast_small_pieces():  # many small writes
        check_body(get(port, f"/?size={3 * MB}&piece=4096", rcvbuf=None), 3 * MB, 4096)

    def fast_keepalive():  # a large response, then the next one on the connection
        res = get(port, f"/?size={12 * MB}", keepalive=True, rcvbuf=None)
        check_body(res, 12 * MB, 64 << 10)
        check_body(get(port, "/?size=1000", sock=res[3]), 1000, 64 << 10)

    run_clients([slow, bursty, fast_small_pieces, fast_keepalive])
    assert "timed out" not in d.log()


def test_event_issue_input(drover):
    """The issue's own input, scaled down: a generator of 1 MiB blocks with a
    Content-Length, read by one rate-limited client, with --timeout 0."""
    need_model("event")
    d = drover(APPS["wsgi"], "-k", "event", "-w", "1", "--timeout", "0")
    size = 10 * MB
    check_body(get(d.port, f"/?size={size}&piece={MB}", Pace(rate=8 * MB)), size, MB)


@pytest.mark.parametrize("app", ["c", "wsgi"])
@pytest.mark.parametrize("model", ["event", "thread"])
def test_large_response_reader_alone(drover, model, app):
    """Each reader alone on its worker, one after the other: no other client
    wakes the loop, so a write interest that libev did not apply stalls the
    response for good (the concurrent test above does not show that)."""
    need_model(model)
    target = "so:" + APPS[app] if app == "c" else APPS[app]
    d = drover(target, "-k", model, "-w", "1", "--timeout", "0")
    size = 6 * MB
    check_body(get(d.port, f"/?size={size}", Pace(rate=8 * MB)), size, 64 << 10)
    check_body(get(d.port, f"/?size={size}&cl=0", Pace(burst=2 * MB, pause=0.2)),
               size, 64 << 10)
    check_body(get(d.port, f"/?size={size}&piece=8192"), size, 8192)
