#!/usr/bin/python3
"""How long a killed worker takes to be replaced and answering again: a pool
of one sync worker is SIGKILLed, and the time to the first 200 afterwards is
the whole gap a client sees (reap, fork, app init, accept).
usage: contrib/bench/respawn.py [BUILD_DIR] [ROUNDS]"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
port = 8190
tmp = tempfile.mkdtemp()
pidfile = os.path.join(tmp, "drover.pid")
master = subprocess.Popen([f"{build}/supervisor/drover", "-w", "1", "-b", f"127.0.0.1:{port}",
                           "--pidfile", pidfile, "--log-level", "warning",
                           f"so:{build}/contrib/hello.so"])


def answers():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def worker_pid():
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master.pid:
                        return int(p)
            except (OSError, ValueError, IndexError):
                pass
    return None


try:
    deadline = time.monotonic() + 10
    while not answers() and time.monotonic() < deadline:
        time.sleep(0.01)
    gaps = []
    for _ in range(rounds):
        victim = worker_pid()
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        # The accept queue keeps the connection while no worker exists: the
        # answer arrives once the replacement accepts.
        ok = answers() or answers()
        gaps.append((time.monotonic() - t0) * 1000)
        assert ok, "no answer after the kill"
        while worker_pid() in (None, victim):
            time.sleep(0.001)
    gaps.sort()
    print(f"killed worker -> answering again: median {gaps[len(gaps) // 2]:.1f} ms, "
          f"min {gaps[0]:.1f} ms, max {gaps[-1]:.1f} ms over {rounds} kills")
finally:
    master.send_signal(signal.SIGTERM)
    master.wait(10)
