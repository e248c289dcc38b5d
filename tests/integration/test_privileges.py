"""Issue 13 item 3: user, group, umask.  The master binds as root, then drops
to `user` before it loads the app or forks a worker: no worker ever runs as
root, the pidfile and control socket belong to the user, and the master can
still sample its workers' /proc files.  Needs root (skipped otherwise)."""
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import DROVER_BIN, get, run_drover, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")

NOBODY = pwd.getpwnam("nobody")


def ids(pid):
    """{'Uid': [real, eff, saved, fs], 'Gid': [...], 'Groups': [...]} of /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = [int(x) for x in v.split()]
    return out


def user_with_supplementary_group():
    """(user, [its groups]) for a non-root user listed as a member of some
    group in the group database, or None."""
    for g in grp.getgrall():
        for member in g.gr_mem:
            try:
                pw = pwd.getpwnam(member)
            except KeyError:
                continue
            if pw.pw_uid != 0:
                return pw, sorted(os.getgrouplist(member, pw.pw_gid))
    return None


@pytest.fixture
def rundir():
    """A directory of nobody's, as systemd's RuntimeDirectory= would make it
    (pytest's tmp_path lies under a root-only 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="drover-priv-"))
    os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(drover, rundir, *args, model="sync"):
    pidfile = str(rundir / "drover.pid")
    return drover("whoami_app:app", "-w", "2", "-k", model, "--pidfile", pidfile,
                  "--smaps-interval", "0.1", "--sample-interval", "0.1",
                  *args, env={"WHOAMI_DIR": str(rundir)}, wait_timeout=20), pidfile


def whoami(d):
    st, _, body = get(d.url + "/", timeout=10)
    assert st == 200, body
    return json.loads(body)


@pytest.mark.parametrize("model", ["sync", "thread", "event", "preload"])
def test_master_and_workers_run_as_user(drover, rundir, model):
    """preload: the app is imported in the master after the drop, not as root."""
    extra = ("--preload",) if model == "preload" else ()
    d, pidfile = start(drover, rundir, "--user", "nobody", "--umask", "027", *extra,
                       model="sync" if model == "preload" else model)
    u, g = NOBODY.pw_uid, NOBODY.pw_gid
    workers = d.wait_workers(2, timeout=20)
    for pid in [d.pid] + workers:
        i = ids(pid)
        assert i["Uid"] == [u] * 4 and i["Gid"] == [g] * 4, (pid, i)
        assert 0 not in i["Groups"], (pid, i)  # root's supplementary groups are gone
    me = whoami(d)
    print(f"\n{model}: worker {me['pid']} uid {me['uid']} gid {me['gid']} groups {me['groups']} "
          f"umask {me['umask']:03o} file mode {me['file_mode']:03o}")
    assert me["uid"] == [u] * 3 and me["gid"] == [g] * 3
    assert me["umask"] == 0o027 and me["file_mode"] == 0o640
    # what root made is the user's: the pidfile, the control socket
    ctl = pidfile[:-4] + ".ctl"
    for path in (pidfile, ctl):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (u, g), path
    assert d.wait_log(r"running as uid %d gid %d" % (u, g), timeout=5)
    assert d.stop() == 0
    assert not os.path.exists(pidfile) and not os.path.exists(ctl)  # the user removed them


def test_ctl_as_the_user_and_sampling_after_drop(drover, rundir):
    d, pidfile = start(drover, rundir, "--user", "nobody")
    d.wait_workers(2, timeout=20)

    def as_nobody():
        os.setgroups([])
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
    p = subprocess.run([DROVER_BIN, "ctl", "--pidfile", pidfile, "--json", "status"], capture_output=True,
                       text=True, timeout=20, preexec_fn=as_nobody)
    assert p.returncode == 0, p.stderr
    # The master (now nobody) still reads its workers' smaps_rollup: they
    # are dumpable again after the id change.
    def pss():
        s = json.loads(subprocess.run([DROVER_BIN, "ctl", "--pidfile", pidfile, "--json", "status"],
                                      capture_output=True, text=True, timeout=20).stdout)
        w = s.get("workers") or []
        return len(w) == 2 and all(x.get("pss_kb") for x in w) and w
    w = wait_until(pss, 20, "workers' pss_kb in status")
    print("\npss_kb of the workers sampled by the unprivileged master:",
          [x["pss_kb"] for x in w])


def test_group_and_supplementary_groups(drover, rundir):
    found = user_with_supplementary_group()
    if not found:
        pytest.skip("no non-root user with a supplementary group in /etc/group")
    pw, groups = found
    os.chown(rundir, pw.pw_uid, pw.pw_gid)
    d, _ = start(drover, rundir, "--user", pw.pw_name)
    me = whoami(d)
    assert me["uid"] == [pw.pw_uid] * 3 and me["gid"] == [pw.pw_gid] * 3
    assert me["groups"] == groups, (pw.pw_name, me["groups"], groups)
    # group overrides the primary group; initgroups still adds the user's
    os.chmod(rundir, 0o777)  # the app writes its probe file with the group nogroup
    d2, _ = start(drover, rundir, "--user", pw.pw_name, "--group", "nogroup")
    ng = grp.getgrnam("nogroup").gr_gid
    me = whoami(d2)
    assert me["gid"] == [ng] * 3
    assert ng in me["groups"] and set(groups) - {pw.pw_gid} <= set(me["groups"])


def test_unknown_user_is_a_config_error(tmp_path):
    ini = tmp_path / "d.ini"
    ini.write_text("[server]\nworkers = 2\nuser = no-such-user-13\n")
    rc, _, err = run_drover("-c", str(ini), "whoami_app:app")
    assert rc == 2 and f"{ini}:3: [server] user: no such user 'no-such-user-13'" in err, err
    rc, _, err = run_drover("--group", "no-such-group-13", "whoami_app:app")
    assert rc == 2 and "no such group 'no-such-group-13'" in err, err
    rc, _, err = run_drover("--umask", "99", "whoami_app:app")
    assert rc == 2 and "octal" in err, err


def test_gunicorn_conf_py_user_group_umask(tmp_path):
    """gunicorn.conf.py's user, group and umask (an int: 0o27 arrives as 23)."""
    py = tmp_path / "gunicorn.conf.py"
    py.write_text('user = "nobody"\ngroup = "nogroup"\numask = 0o27\n')
    rc, out, err = run_drover("-c", str(py), "--check-config", "whoami_app:app")
    assert rc == 0, err
    got = dict(re.findall(r"^(user|group|umask) = (.*)$", out, re.M))
    assert got == {"user": "nobody", "group": "nogroup", "umask": "027"}, out
