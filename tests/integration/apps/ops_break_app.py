"""A WSGI app whose import fails while the file named by OPS_BREAK_FLAG
exists (the files of a running service changed under it: a deploy half
done), and takes OPS_BREAK_SLOW_IMPORT seconds to import when that file
exists (a new master's workers slow to be ready).  Used by
test_ops_break.py."""
import os
import time

if os.path.exists(os.environ.get("OPS_BREAK_FLAG", "/nonexistent")):
    raise RuntimeError("ops_break_app: the deploy is half done")
if os.path.exists(os.environ.get("OPS_BREAK_SLOW_IMPORT", "/nonexistent")):
    time.sleep(1.0)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
