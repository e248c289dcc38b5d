"""Unix sockets are claimed, never stolen: a path on which a live listener
answers is "address in use" (exit 1, as for TCP); a stale socket file
(connection refused) is replaced; a master removes only the socket file it
created, never a path that now names someone else's socket.  The same holds
for the control socket."""
import os
import socket

from conftest import ECHO_SO, HELLO_SO, http, run_drover, status_of, wait_until

HELLO = "so:" + HELLO_SO
GET = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def stale_socket(path):
    """A socket file nobody listens on: bound, then closed without unlinking."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert os.path.exists(path)


def test_second_instance_on_live_unix_socket_is_address_in_use(drover, tmp_path):
    path = str(tmp_path / "app.sock")
    a = drover(HELLO, "-b", "unix:" + path, "-w", "1")
    ino = os.stat(path).st_ino
    rc, _, err = run_drover("-b", "unix:" + path, "-w", "1", "so:" + ECHO_SO, timeout=15)
    assert rc == 1, err
    assert "Address already in use" in err and path in err, err
    assert os.stat(path).st_ino == ino  # not unlinked, not rebound
    assert status_of(http(path, GET)) == 200  # the first still answers there
    assert a.alive()


def test_stale_unix_socket_is_replaced_and_removed_at_stop(drover, tmp_path):
    path = str(tmp_path / "app.sock")
    stale_socket(path)
    d = drover(HELLO, "-b", "unix:" + path, "-w", "1")
    assert status_of(http(path, GET)) == 200
    assert d.stop() == 0
    assert not os.path.exists(path)


def test_regular_file_at_unix_path_is_not_removed(tmp_path):
    path = str(tmp_path / "app.sock")
    with open(path, "w") as f:
        f.write("not a socket\n")
    rc, _, err = run_drover("-b", "unix:" + path, "-w", "1", HELLO, timeout=15)
    assert rc == 1 and "Address already in use" in err, err
    with open(path) as f:
        assert f.read() == "not a socket\n"


def test_master_removes_only_its_own_socket_file(drover, tmp_path):
    path = str(tmp_path / "app.sock")
    d = drover(HELLO, "-b", "unix:" + path, "-w", "1")
    # Someone else takes the path over while the master runs.
    os.unlink(path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        other.bind(path)
        other.listen(1)
        ino = os.stat(path).st_ino
        assert d.stop() == 0
        assert os.path.exists(path) and os.stat(path).st_ino == ino
    finally:
        other.close()


def test_control_socket_claimed_not_stolen(drover, tmp_path):
    ctl = str(tmp_path / "master.ctl")
    stale_socket(ctl)  # left by a master that died: replaced
    a = drover(HELLO, "-w", "1", "--control", ctl)
    a.wait_log(r"control socket at " + ctl)
    ino = os.stat(ctl).st_ino
    # A second master wanting the same control socket runs without one and
    # leaves the live one alone, also when it stops.
    b = drover(HELLO, "-w", "1", "--control", ctl)
    b.wait_log(r"control socket %s: Address already in use; running without it" % ctl)
    assert os.stat(ctl).st_ino == ino
    assert b.stop() == 0
    assert os.path.exists(ctl) and os.stat(ctl).st_ino == ino
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(ctl)
        s.sendall(b"ping\n")
        assert b'"pid":%d' % a.pid in s.recv(4096)
    assert a.stop() == 0
    wait_until(lambda: not os.path.exists(ctl), 5, "control socket removed")
