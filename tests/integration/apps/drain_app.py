"""WSGI app for tests/integration/test_graceful_drain.py and
test_max_requests_limit.py: "?sleep=MS" sleeps first (so a request can be
held in the app), then answers a short body with its length."""
import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if "sleep" in q:
        time.sleep(int(q["sleep"]) / 1000.0)
    body = ("%s %s pid=%d\n" % (environ["PATH_INFO"], environ["QUERY_STRING"],
                                os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
