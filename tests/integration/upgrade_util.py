"""Helpers shared by test_upgrade.py and test_socket_activation.py: masters
that no fixture started (a new master forked by USR2, reparented once the
old one exits) are tracked by pid and start time and killed at teardown."""
import os
import signal

from conftest import children_of, kill_if_same, pid_alive, proc_stat, wait_until


class Masters:
    """Masters started behind the fixture's back, and their workers."""

    def __init__(self):
        self.seen = {}  # pid -> starttime

    def track(self, pid):
        st = proc_stat(pid)
        if st:
            self.seen[pid] = st[2]
            for k in children_of(pid):
                kst = proc_stat(k)
                if kst:
                    self.seen[k] = kst[2]
        return pid

    def workers(self, pid, but=()):
        """Live children of pid (a master not ours to wait for), minus but."""
        self.track(pid)
        return [k for k in children_of(pid) if k not in but]

    def cleanup(self):
        for pid, start in list(self.seen.items()):
            if pid_alive(pid):
                for k in children_of(pid):
                    st = proc_stat(k)
                    if st:
                        self.seen.setdefault(k, st[2])
        for pid, start in self.seen.items():
            kill_if_same(pid, start, signal.SIGKILL)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_gone(pid, timeout=15):
    wait_until(lambda: not pid_alive(pid), timeout, f"pid {pid} to exit")


def exe_ino(pid):
    return os.stat(f"/proc/{pid}/exe").st_ino
