"""A WSGI hello for tests/integration/test_thread_balance.py."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"hi\n"]
