"""WSGI app for test_fair_stuck: answers with the worker's pid; ?sleep=MS
holds the request (time.sleep: a thread worker's thread, or an event
worker's whole loop)."""
import os
import time


def app(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    if q.startswith("sleep="):
        time.sleep(int(q[6:]) / 1000)
    body = b"%d" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
