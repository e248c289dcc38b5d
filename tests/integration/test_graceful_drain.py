"""Graceful stop and reload drain (issue 8, part 4): a request whose
connection the kernel already accepted is in flight.  At TERM the master
takes the listen queues, stops listening (new connections are refused:
ECONNREFUSED, never accepted and then reset) and hands the queued
connections to the workers, which answer them with Connection: close.
Keep-alive clients whose next request comes during the drain are served
(Connection: close).  The same for the generation a HUP retires.  Every
model, C and WSGI apps."""
import errno
import os
import signal
import socket

import pytest

from conftest import ECHO_SO, read_response, wait_until

MODELS = ["sync", "thread", "event"]
APPS = {"c": "so:" + ECHO_SO, "wsgi": "drain_app:app"}
LONG_MS = 1200


def start(drover, model, app="c", *args):
    # One worker with one request thread: a request in the app leaves the
    # next connections in the listen queue, in every model.
    return drover(APPS[app], "-k", model, "-w", "1", "--threads", "1",
                  "--graceful-timeout", "20", *args, wait_timeout=20)


def in_app(d):
    """A thread of a worker sleeps in the app (echo's nanosleep, time.sleep)."""
    for pid in d.workers():
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{pid}/task/{t}/wchan") as f:
                    if "nanosleep" in f.read():
                        return True
            except OSError:
                pass
    return False


def connect(d, timeout=20):
    s = socket.socket(socket.AF_UNIX if d.unix_path else socket.AF_INET)
    s.settimeout(timeout)
    s.connect(d.unix_path or (d.host, d.port))
    return s


def req(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: t\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def closed_cleanly(s, timeout=10):
    """The server's FIN arrives (EOF), not a reset, with nothing more."""
    s.settimeout(timeout)
    return s.recv(1) == b""


def refused(d):
    try:
        connect(d, timeout=5).close()
    except OSError as e:
        return e.errno == errno.ECONNREFUSED
    return False


def hold_and_queue(d, nqueued):
    """A request held in the app, then nqueued clients connected with their
    request sent: all in flight as the stop begins."""
    a = connect(d)
    a.sendall(req(f"/?sleep={LONG_MS}", close=True))
    wait_until(lambda: in_app(d), 10, "the long request in the app")
    queued = []
    for i in range(nqueued):
        s = connect(d)
        s.sendall(req(f"/q{i}"))
        queued.append(s)
    return a, queued


@pytest.mark.parametrize("app", ["c", "wsgi"])
@pytest.mark.parametrize("model", MODELS)
def test_term_serves_queued_and_refuses_new(drover, model, app):
    d = start(drover, model, app)
    a, queued = hold_and_queue(d, 3)
    mark = d.log_mark()
    d.signal(signal.SIGTERM)
    d.wait_log(r"graceful stop: 3 queued connections handed to workers, 0 answered 503",
               since=mark)
    assert refused(d), "a new connection after TERM must be refused"
    st, head, _ = read_response(a)
    assert st == 200 and "connection: close" in head
    for i, s in enumerate(queued):
        st, head, body = read_response(s)  # a reset raises here
        assert st == 200, head
        assert f"/q{i}".encode() in body
        assert "connection: close" in head, head
        assert closed_cleanly(s)
    assert d.wait_exit(20) == 0


@pytest.mark.parametrize("model", ["thread", "event"])
def test_keepalive_next_request_during_drain(drover, model):
    # keepalive 2: the idle connection is closed at its keepalive deadline
    # (a drain does not close idle connections early), sooner than 5 s
    d = start(drover, model, "c", "--keepalive", "2")
    ka, idle = connect(d), connect(d)
    for s in (ka, idle):
        s.sendall(req("/first"))
        st, head, _ = read_response(s)
        assert st == 200 and "connection: close" not in head
    a, _ = hold_and_queue(d, 0)
    mark = d.log_mark()
    d.signal(signal.SIGTERM)
    d.wait_log(r"graceful stop:", since=mark)
    # The long request is still in the app: the drain is under way.
    ka.sendall(req("/next"))
    st, head, body = read_response(ka)
    assert st == 200 and b"/next" in body
    assert "connection: close" in head
    assert closed_cleanly(ka)
    assert read_response(a)[0] == 200
    assert closed_cleanly(idle)  # the idle one: a FIN, not a reset
    assert d.wait_exit(20) == 0


@pytest.mark.parametrize("model", MODELS)
def test_hup_retired_generation_finishes_its_connections(drover, model):
    d = start(drover, model, "c")
    old = d.workers()
    ka = None
    if model != "sync":
        ka = connect(d)
        ka.sendall(req("/first"))
        assert read_response(ka)[0] == 200
    a, queued = hold_and_queue(d, 2)
    d.signal(signal.SIGHUP)
    if ka is not None:  # the old worker, draining, still answers it
        ka.sendall(req("/next"))
        st, head, body = read_response(ka)
        assert st == 200 and b"/next" in body
    for i, s in enumerate(queued):  # the new generation takes the queue
        st, head, body = read_response(s)
        assert st == 200 and f"/q{i}".encode() in body
    st, head, _ = read_response(a)
    assert st == 200 and "connection: close" in head
    if ka is not None:
        assert closed_cleanly(ka)
    wait_until(lambda: (w := d.workers()) and not set(w) & set(old), 20,
               "the old generation gone")
    st, _, _ = read_response_after(d, "/after")
    assert st == 200


def read_response_after(d, path):
    with connect(d) as s:
        s.sendall(req(path, close=True))
        return read_response(s)


def test_unix_socket_refused_after_term(drover, tmp_path):
    path = str(tmp_path / "d.sock")
    d = drover(APPS["c"], "-b", f"unix:{path}", "-w", "1", "--graceful-timeout", "20")
    a, queued = hold_and_queue(d, 2)
    mark = d.log_mark()
    d.signal(signal.SIGTERM)
    d.wait_log(r"graceful stop: 2 queued connections handed", since=mark)
    assert refused(d)
    assert read_response(a)[0] == 200
    for s in queued:
        st, head, _ = read_response(s)
        assert st == 200 and "connection: close" in head
    assert d.wait_exit(20) == 0


def test_no_worker_left_answers_503(drover):
    d = drover(APPS["c"], "-w", "1")
    d.signal(signal.SIGWINCH)
    d.wait_workers(0)
    queued = connect(d)
    queued.sendall(req("/late"))
    d.signal(signal.SIGTERM)
    st, head, _ = read_response(queued)
    assert st == 503 and "connection: close" in head
    assert d.wait_exit(10) == 0
