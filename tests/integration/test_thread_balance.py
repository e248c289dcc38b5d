"""The thread model shares keep-alive clients over its workers (README,
"Thread model: balance and overload"): a burst of keep-alive clients spreads
evenly, a replaced worker gets its share back, and a new client is served
while keep-alive clients keep every thread busy."""
import http.client
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, DROVER_BIN, HELLO_SO, wait_until

BLOCKER = "so:" + os.path.join(BUILD, "tests", "blocker.so")
APPS = {"c": "so:" + HELLO_SO, "wsgi": "balance_app:app"}
CLIENTS = 8


def status(d):
    p = subprocess.run([DROVER_BIN, "ctl", "--pidfile", d.pidfile, "--json", "status"],
                       capture_output=True, text=True, timeout=10)
    return json.loads(p.stdout) if p.returncode == 0 else None


def serving(d, n):
    """The status once n workers are ready, else None."""
    st = status(d)
    if not st or st["master"]["ready"] < n:
        return None
    ws = [w for w in st["workers"] if w["state"] in ("idle", "busy")]
    return st if len(ws) == n else None


class KeepAlive:
    """`n` clients, each on one keep-alive connection, GET path in a closed
    loop; a broken connection is replaced.  All connect at once (a burst,
    as wrk does) before the first request."""

    def __init__(self, port, n, path="/"):
        self.port, self.path = port, path
        self.halt = threading.Event()
        self.ok = 0
        self.errors = []
        self.conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                      for _ in range(n)]
        for c in self.conns:
            c.connect()
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True)
                        for c in self.conns]

    def _run(self, c):
        while not self.halt.is_set():
            try:
                c.request("GET", self.path)
                r = c.getresponse()
                r.read()
                self.ok += 1
                if r.getheader("connection", "").lower() == "close":
                    c.close()  # asked to reconnect: the next request does
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                c.close()
                time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for t in self.threads:
            t.join(15)
        for c in self.conns:
            c.close()


def counts(st):
    return {w["pid"]: (w["requests"], w["connections"]) for w in st["workers"]
            if w["state"] in ("idle", "busy")}


def spread(conns):
    return max(conns) - min(conns)


@pytest.mark.parametrize("app", ["c", "wsgi"])
def test_burst_of_keepalive_clients_shares_evenly(drover, app):
    d = drover(APPS[app], "-k", "thread", "-w", "2", "--threads", "2",
               "--sample-interval", "0.1")
    wait_until(lambda: serving(d, 2), 15, "2 workers ready", interval=0.1)
    with KeepAlive(d.port, CLIENTS):
        # The connections spread at once (the fair accept), not by shedding
        # later: the burst came while both workers accepted.
        st = wait_until(lambda: (lambda s: s if s and sum(c for _, c in counts(s).values())
                                 == CLIENTS else None)(serving(d, 2)), 10, "all clients in")
        conns = [c for _, c in counts(st).values()]
        assert spread(conns) <= 1, conns
        before = counts(st)
        time.sleep(2)  # a measuring window, not a synchronisation
        after = counts(wait_until(lambda: serving(d, 2), 10, "status"))
    shares = [after[p][0] - before[p][0] for p in after]
    mean = sum(shares) / len(shares)
    assert mean > 50, shares
    # README target: +-25% with wrk; generous here (a shared, loaded host).
    assert all(abs(s - mean) <= 0.4 * mean for s in shares), shares


def test_replaced_worker_gets_its_share_back(drover):
    """Clients that reconnected while one worker was down all landed on the
    other; once the replacement is up, the excess is asked to reconnect
    (Connection: close) and the fair accept sends it over."""
    d = drover("so:" + HELLO_SO, "-k", "thread", "-w", "2", "--threads", "2",
               "--sample-interval", "0.1")
    wait_until(lambda: serving(d, 2), 15, "2 workers ready", interval=0.1)
    with KeepAlive(d.port, CLIENTS) as ka:
        wait_until(lambda: sum(c for _, c in counts(serving(d, 2) or {"workers": []}).values())
                   == CLIENTS, 10, "all clients in")
        victim = max(counts(serving(d, 2)).items(), key=lambda kv: kv[1][1])[0]
        os.kill(victim, 9)

        def rebalanced():
            st = serving(d, 2)
            if not st or victim in counts(st):
                return None
            conns = [c for _, c in counts(st).values()]
            return conns if sum(conns) == CLIENTS and spread(conns) <= 1 else None
        wait_until(rebalanced, 15, "the connections back on both workers", interval=0.1)
        assert ka.ok > 0


def test_new_client_served_while_keepalive_clients_saturate(drover):
    """4 keep-alive clients cycling through 2 threads (20 ms requests) keep
    the worker saturated: its listener is out of epoll.  A new client waits
    in the kernel queue, and is still served about as soon as a keep-alive
    client's next request (the saturated worker peeks at the queue)."""
    d = drover(BLOCKER, "-k", "thread", "-w", "1", "--threads", "2",
               "--sample-interval", "0.1")
    wait_until(lambda: serving(d, 1), 15, "worker ready", interval=0.1)
    with KeepAlive(d.port, 4, "/block?ms=20") as ka:
        wait_until(lambda: ka.ok >= 20, 10, "keep-alive load running")
        waits = []
        for _ in range(5):
            t = time.monotonic()
            with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
                s.sendall(b"GET /new HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.recv(64).startswith(b"HTTP/1.1 200"), "no answer to a new client"
            waits.append(time.monotonic() - t)
        assert ka.ok > 0 and not ka.errors, ka.errors[:3]
    # A keep-alive request waits ~20-40 ms here; the bound is generous.
    assert max(waits) < 3, waits
