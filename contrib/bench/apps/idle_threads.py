"""WSGI hello whose import starts IDLE_THREADS threads (default 45) that
only wait, as the seed's service did: with the thread model's request
threads each worker has about 50 threads for the master to sample.  Used by
contrib/bench/sampler_scale.sh."""
import os
import threading

_stop = threading.Event()


def _idle():
    _stop.wait()


for _ in range(int(os.environ.get("IDLE_THREADS", "45"))):
    threading.Thread(target=_idle, daemon=True).start()


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!\n"]
