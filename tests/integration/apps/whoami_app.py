"""WSGI app for test_privileges: says who the worker runs as (uids, gids,
supplementary groups, umask) and which mode a file it creates gets."""
import json
import os
import tempfile


def app(environ, start_response):
    mask = os.umask(0)
    os.umask(mask)
    d = os.environ.get("WHOAMI_DIR") or tempfile.gettempdir()
    probe = os.path.join(d, f"probe-{os.getpid()}")
    with open(probe, "w"):
        pass
    mode = os.stat(probe).st_mode & 0o777
    os.unlink(probe)
    body = json.dumps({"pid": os.getpid(), "uid": os.getresuid(), "gid": os.getresgid(),
                       "groups": sorted(os.getgroups()), "umask": mask,
                       "file_mode": mode}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
