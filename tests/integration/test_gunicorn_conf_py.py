"""gunicorn.conf.py (issue 14): the Flask example served from a gunicorn
configuration file, its server hooks called in gunicorn's order (a hook that
raises is logged and changes nothing), and the same settings as the command
line table of test_gunicorn_compat.py through --check-config."""
import os

import pytest

from conftest import REPO, get, run_drover, wait_until

EXAMPLES = os.path.join(REPO, "contrib", "examples")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)

CONF_PY = '''
import os
workers = 1
worker_class = "gthread"
threads = 2
timeout = 20
loglevel = "info"
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s "%(a)s"'
raw_env = ["FROM_CONF=yes"]

LOG = os.environ["HOOKS_LOG"]
def note(*words):
    with open(LOG, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")

def on_starting(server):
    note("on_starting", server.pid == os.getpid() or "helper")
def when_ready(server):
    note("when_ready")
    raise RuntimeError("a hook that raises is only logged")
def post_fork(server, worker):
    note("post_fork", worker.pid == os.getpid())
def post_worker_init(worker):
    note("post_worker_init", os.environ.get("FROM_CONF"))
def pre_request(worker, req):
    worker.log.info("pre_request %s %s", req.method, req.path)
    note("pre_request", req.method, req.path)
def post_request(worker, req, environ, resp):
    note("post_request", req.path, resp.status_code)
def worker_exit(server, worker):
    note("worker_exit")
def on_exit(server):
    note("on_exit")
'''


def lines(path):
    try:
        with open(path) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def test_flask_from_gunicorn_conf_py_with_hooks(drover, tmp_path):
    pytest.importorskip("flask")
    conf = write(tmp_path / "gunicorn.conf.py", CONF_PY)
    log = str(tmp_path / "hooks.log")
    srv = drover("flask_app:app", "-c", conf, cwd=EXAMPLES, env={"HOOKS_LOG": log})
    st, _, body = get(srv.url + "/")
    assert st == 200 and body == b"Hello from Flask on drover!\n"
    wait_until(lambda: "post_request / 200" in lines(log), 10, "post_request hook")
    assert srv.alive()
    assert srv.stop() == 0
    wait_until(lambda: "on_exit" in lines(log), 10, "on_exit hook")
    got = lines(log)  # the fixture's readiness probe is a request too
    assert got[:4] == ["on_starting helper", "when_ready", "post_fork True",
                       "post_worker_init yes"], got
    assert got[-2:] == ["worker_exit", "on_exit"], got
    assert got[4:-2] == ["pre_request GET /", "post_request / 200"] * ((len(got) - 6) // 2), got
    err = srv.log()
    assert "hook when_ready raised (ignored)" in err and "RuntimeError" in err
    assert "pre_request GET /" in err  # worker.log writes to the error log
    assert '"GET / HTTP/1.1" 200' in srv.stdout()  # the translated access format


TABLE_PY = '''
bind = "0.0.0.0"
workers = 3
worker_class = "gthread"
threads = 8
timeout = 10
keepalive = 2
accesslog = "-"
errorlog = "-"
loglevel = "debug"
max_requests = 1000
max_requests_jitter = 50
preload_app = True
raw_env = ["A=1", "B=2"]
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 4096
proc_name = "shop"
worker_tmp_dir = "/dev/shm"
statsd_host = "localhost:8125"
def pre_fork(server, worker): pass
def helper(): pass
'''


def test_conf_py_settings_through_check_config(tmp_path):
    conf = write(tmp_path / "gunicorn.conf.py", TABLE_PY)
    rc, out, err = run_drover("--check-config", "-c", conf, "app:wsgi")
    assert rc == 0, err
    want = {"bind": "0.0.0.0:8000", "workers": "3", "worker_class": "thread", "threads": "8",
            "timeout": "10", "keepalive": "2", "access_log": "-", "error_log": "-",
            "log_level": "debug", "max_requests": "1000", "max_requests_jitter": "50",
            "preload": "true", "max_request_line": "4094", "max_header_count": "50",
            "max_header_size": "4K", "proc_name": "shop", "gunicorn_config": conf}
    got = dict(l.split(" = ", 1) for l in out.splitlines() if " = " in l)
    for k, v in want.items():
        assert got[k] == v, (k, got[k])
    assert "env = A=1\nenv = B=2" in out
    # one warning naming what is not supported; helpers and no-effect names are not in it
    assert err.count("\n") == 1 and err.endswith("ignored: statsd_host, pre_fork\n"), err


@pytest.mark.parametrize("text,why", [
    ("timeout = 'soon'\n", "timeout: not a duration: 'soon'"),
    ("workers = 0\n", "workers: must be between 1 and 512"),
    ("worker_class = 'gevent'\n", "worker_class: 'gevent' is not supported"),
    ("bind = {'a': 1}\n", "bind: a dict has no meaning for drover"),
    ("x = 1 / 0\n", "ZeroDivisionError: division by zero"),
])
def test_conf_py_errors_name_file_and_setting(tmp_path, text, why):
    conf = write(tmp_path / "gunicorn.conf.py", text)
    rc, _, err = run_drover("--check-config", "-c", conf, "app:wsgi")
    assert rc == 2 and err.startswith(f"drover: {conf}: ") and why in err, err


def test_print_ini_from_conf_py(tmp_path):
    conf = write(tmp_path / "gunicorn.conf.py", TABLE_PY)
    rc, out, err = run_drover("--print-ini", "-c", conf, "app:wsgi")
    assert rc == 0, err
    ini = write(tmp_path / "drover.ini", out)
    rc2, again, err2 = run_drover("--check-config", "-c", ini)
    assert rc2 == 0, err2
    assert "threads = 8" in again and "worker_class = thread" in again
    assert "gunicorn_config =\n" in again  # hooks stay with the .py file
