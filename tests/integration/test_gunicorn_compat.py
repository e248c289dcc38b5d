"""gunicorn compatibility (issue 14): real gunicorn command lines, unchanged,
through `drover --check-config`, with the effective configuration checked.
The Django and Flask rows are the commands of their deployment guides."""
import pytest

from conftest import run_drover

GUNICORN_FMT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

# (gunicorn arguments, {key: expected value(s)} in drover's effective INI)
ACCEPTED = [
    # Django: docs.djangoproject.com/en/stable/howto/deployment/wsgi/gunicorn/
    (["myproject.wsgi"], {"app": "myproject.wsgi"}),
    # Flask: flask.palletsprojects.com/en/stable/deploying/gunicorn/
    (["-w", "4", "hello:create_app()"], {"workers": "4", "app": "hello:create_app()"}),
    (["-w", "4", "-b", "0.0.0.0", "hello:create_app()"],
     {"workers": "4", "bind": ["0.0.0.0:8000"]}),
    (["--workers", "3", "--bind", "unix:/run/gunicorn.sock", "myproject.wsgi:application"],
     {"workers": "3", "bind": ["unix:/run/gunicorn.sock"], "app": "myproject.wsgi:application"}),
    # The list of flags that used to be "unknown option".
    (["-k", "gthread", "--threads", "8", "--access-logfile", "-", "--error-logfile", "-",
      "--keep-alive", "2", "--limit-request-line", "4094", "-t", "10", "-e", "KEY=V",
      "app:wsgi"],
     {"worker_class": "thread", "threads": "8", "access_log": "-", "error_log": "-",
      "keepalive": "2", "max_request_line": "4094", "timeout": "10", "env": ["KEY=V"]}),
    (["--log-file=-", "--limit-request-fields", "50", "--limit-request-field_size", "4k",
      "--pid", "/tmp/g.pid", "-n", "shop", "--worker-connections", "500",
      "--max-requests", "1000", "--max-requests-jitter", "50", "--graceful-timeout", "5",
      "--preload", "--chdir", "/srv", "--pythonpath", "/srv/lib", "--backlog", "64",
      "-e", "A=1", "--env", "B=2", "app:wsgi"],
     {"error_log": "-", "max_header_count": "50", "max_header_size": "4K",
      "pidfile": "/tmp/g.pid", "proc_name": "shop", "worker_connections": "500",
      "max_requests": "1000", "max_requests_jitter": "50", "graceful_timeout": "5",
      "preload": "true", "chdir": "/srv", "pythonpath": "/srv/lib", "backlog": "64",
      "env": ["A=1", "B=2"]}),
    (["-k", "sync", "--access-logformat", GUNICORN_FMT + " %(T)s %(D)s %(M)s %(L)s %(p)s "
      "%({x-request-id}i)s %(m)s %(U)s %(q)s %(H)s %(B)s 100%%", "app:wsgi"],
     {"worker_class": "sync",
      "access_log_format": '%h %l %u %t "%r" %s %b "%{Referer}i" "%{User-Agent}i" %T %D %M '
                           "%L <%p> %{x-request-id}i %m %U %q %H %B 100%%"}),
    (["-k", "gunicorn.workers.gthread.ThreadWorker", "app:wsgi"], {"worker_class": "thread"}),
    (["-k", "uvicorn.workers.UvicornWorker", "app:asgi"], {"worker_class": "asgi"}),
    (["myproject.asgi:application", "-k", "uvicorn_worker.UvicornWorker"],
     {"worker_class": "asgi"}),
    (["--worker-tmp-dir", "/dev/shm", "--no-sendfile", "app:wsgi"], {"app": "app:wsgi"}),
    (["--log-level", "debug", "app:wsgi"], {"log_level": "debug"}),
    (["-u", "nobody", "-g", "nogroup", "-m", "0o27", "app:wsgi"],
     {"user": "nobody", "group": "nogroup", "umask": "0o27"}),
]

REFUSED = [
    (["-k", "gevent", "hello:create_app()"], "-k event"),
    (["-k", "eventlet", "hello:create_app()"], "-k thread"),
    (["-k", "tornado", "app:wsgi"], "not supported"),
    (["-D", "app:wsgi"], "foreground"),
    (["--certfile", "c.pem", "app:wsgi"], "TLS"),
    (["--access-logformat", "%({x-resp}o)s", "app:wsgi"], "not supported"),
]


def effective(out):
    """{key: value} (lists for keys that repeat or are list options) from --check-config."""
    conf = {}
    for line in out.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, v = (s.strip() for s in line.split("=", 1))
            conf.setdefault(k, []).append(v)
    return conf


@pytest.mark.parametrize("args,want", ACCEPTED, ids=[" ".join(a) for a, _ in ACCEPTED])
def test_gunicorn_command_line(args, want):
    rc, out, err = run_drover("--check-config", *args)
    assert rc == 0, err
    conf = effective(out)
    for k, v in want.items():
        assert conf[k] == (v if isinstance(v, list) else [v]), (k, conf[k])


@pytest.mark.parametrize("args,why", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_gunicorn_refusals_say_what_instead(args, why):
    rc, out, err = run_drover("--check-config", *args)
    assert rc == 2 and why in err and err.count("\n") == 1, err


def test_ignored_flags_are_said_once():
    rc, _, err = run_drover("--check-config", "--worker-tmp-dir", "/dev/shm",
                            "--worker-tmp-dir", "/tmp", "app:wsgi")
    assert rc == 0 and err.count("--worker-tmp-dir: accepted") == 1, err


def test_cmd_args_variables_and_precedence():
    env = {"GUNICORN_CMD_ARGS": "--bind=127.0.0.1:9000 --workers=3 --name 'a b'",
           "DROVER_CMD_ARGS": "-w 5 --keep-alive 7"}
    rc, out, err = run_drover("--check-config", "-b", "127.0.0.1:9001", "app:wsgi", env=env)
    assert rc == 0, err
    conf = effective(out)
    # gunicorn's order: variables < command line; DROVER_CMD_ARGS after GUNICORN_CMD_ARGS
    assert conf["bind"] == ["127.0.0.1:9001"] and conf["workers"] == ["5"]
    assert conf["proc_name"] == ["a b"] and conf["keepalive"] == ["7"]
    rc, _, err = run_drover("--check-config", "app:wsgi", env={"GUNICORN_CMD_ARGS": "--nope"})
    assert rc == 2 and err.startswith("drover: GUNICORN_CMD_ARGS: --nope: unknown option"), err


def test_help_lists_gunicorn_names_beside_drovers():
    rc, out, _ = run_drover("--help")
    assert rc == 0
    assert "[gunicorn: -t, --timeout]" in out and "--limit-request-line]" in out
    assert "--worker-tmp-dir" in out and "--certfile" in out
