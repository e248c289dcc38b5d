"""Minimal WSGI app, the Python twin of hello.c:
    drover -w 4 hello:app              (from contrib/examples)
`slow` answers the same after 20 ms of waiting, as a database call would."""
import time

BODY = b"Hello, World!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


def slow(environ, start_response):
    time.sleep(0.02)
    return app(environ, start_response)


application = app
