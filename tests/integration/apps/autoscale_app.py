"""Apps for the autoscaler tests and benchmark: `sleep` waits 50 ms (I/O
bound, as a database call would), `burn` spends about 20 ms of CPU."""
import time

BODY = b"ok\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def sleep(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", HEADERS)
    return [BODY]


def burn(environ, start_response):
    end = time.thread_time() + 0.02
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x += i * i
    start_response("200 OK", HEADERS)
    return [BODY]
