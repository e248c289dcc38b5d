#!/usr/bin/python3
"""A tiny systemd socket activation for the tests: bind the sockets named in
TEST_ACTIVATE ("tcp:HOST:PORT=NAME;unix:PATH=NAME"), keep a copy of them in a
holder process (as systemd keeps its sockets while the service runs), put
them at fds 3.., set LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (this very
process, which then becomes drover by exec) and exec TEST_DROVER with our
arguments.  The holder's pid goes to TEST_HOLDER_PIDFILE; it exits after 60 s
at the latest."""
import fcntl
import os
import signal
import socket
import sys


def bind(addr):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(addr[5:])
    else:
        host, port = addr[4:].rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    s.listen(128)
    return s


def hold(socks):
    """Double fork: a holder that is nobody's worker keeps the sockets."""
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            with open(os.environ["TEST_HOLDER_PIDFILE"] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(os.environ["TEST_HOLDER_PIDFILE"] + ".tmp",
                      os.environ["TEST_HOLDER_PIDFILE"])
            signal.alarm(60)
            while True:
                signal.pause()
        os._exit(0)
    os.waitpid(pid, 0)


def main():
    items = [i.rsplit("=", 1) for i in os.environ.pop("TEST_ACTIVATE").split(";")]
    socks = [bind(addr) for addr, _ in items]
    if os.environ.get("TEST_HOLDER_PIDFILE"):
        hold(socks)
    high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in socks]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    env = dict(os.environ)
    env.update(LISTEN_FDS=str(len(socks)), LISTEN_PID=str(os.getpid()),
               LISTEN_FDNAMES=":".join(name for _, name in items))
    drover = env.pop("TEST_DROVER")
    os.execve(drover, [drover] + sys.argv[1:], env)


main()
