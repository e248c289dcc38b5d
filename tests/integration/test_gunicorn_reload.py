"""--reload (issue 14): editing a module the app imported replaces the
worker, and the new worker serves the new code; refused with --preload."""
import os

from conftest import get, run_drover, wait_until

APP = '''from reload_msg import MESSAGE

def app(environ, start_response):
    body = MESSAGE.encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''


def write(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # as editors save: a new file renamed over the old


def body(srv):
    try:
        st, _, b = get(srv.url + "/")
        return b if st == 200 else None
    except OSError:
        return None


def test_reload_picks_up_an_edited_module(drover, tmp_path):
    write(tmp_path / "reload_app.py", APP)
    write(tmp_path / "reload_msg.py", 'MESSAGE = "one"\n')
    srv = drover("reload_app:app", "--reload", "-w", "1", cwd=str(tmp_path),
                 env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert body(srv) == b"one"
    old = srv.workers()
    write(tmp_path / "reload_msg.py", 'MESSAGE = "two"\n')
    wait_until(lambda: body(srv) == b"two", 15, "the edited module to be served")
    assert "reload_msg.py changed" in srv.log()
    assert not set(srv.workers()) & set(old)


def test_reload_refused_with_preload():
    rc, _, err = run_drover("--check-config", "--reload", "--preload", "app:wsgi")
    assert rc == 2 and "--reload cannot be used with --preload" in err
