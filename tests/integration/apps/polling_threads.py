"""WSGI app for tests/integration/test_doctor.py: at import it starts dozens
of idle threads that poll in short sleeps (the "45 threads per worker"
incident: each wake-up takes the GIL for nothing).  POLLERS and POLL_S come
from the environment."""
import os
import threading
import time

POLLERS = int(os.environ.get("POLLERS", "40"))
POLL_S = float(os.environ.get("POLL_S", "0.0005"))


def _poll():
    while True:
        time.sleep(POLL_S)


def _start():
    for _ in range(POLLERS):
        threading.Thread(target=_poll, daemon=True).start()



def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]


# Threads do not survive fork: gunicorn and drover load the app in each worker
# (no preload), so starting them at import gives every worker its pollers.
_start()
