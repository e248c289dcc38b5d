"""WSGI app for tests/integration/test_stall.py: /block?ms=N blocks the
serving thread in resolve_host() for N ms; anything else answers at once."""
import time


def resolve_host(ms):
    time.sleep(ms / 1000.0)  # the blocking call the stall report must name


def app(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    if q.startswith("ms="):
        resolve_host(int(q[3:]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
