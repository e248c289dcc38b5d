#!/usr/bin/python3
"""Starvation probe and served-connection count for contrib/bench/fairness.sh.

Started at the same moment as a `wrk -cN -dD` run against PORT, it does two
things while the load lasts:

1. New clients.  Every INTERVAL seconds (from 0.5 s, COUNT of them) a new
   client opens a NEW connection, sends one `GET /` and times connect ->
   complete response.  A client without a complete response within TIMEOUT
   seconds, or only after the load stopped (it waited the whole run, and was
   served only because wrk went away), is "unanswered".  This is what a
   load balancer's health check or a new user sees while keep-alive clients
   hold the server.

2. Served connections.  At DURATION - 0.4 s it runs `ss -tni` once on the
   CLIENT side (dst 127.0.0.1:PORT) and counts the sockets with
   bytes_received > 0, i.e. the wrk connections that got at least one
   response byte during the run.  Why this is reliable: every connection wrk
   opens completes its handshake in the kernel (the server's accept queue
   holds it) and wrk writes its first request at once, so a connection the
   server never accepted, or accepted but never answered, shows
   bytes_received absent/0, while a served keep-alive connection has
   received every response of its life.  The probe's own sockets are left
   out by their local ports.  Caveat: a connection the server closed (wrk
   then reconnects) restarts at 0; the servers compared here keep
   connections alive (uWSGI --http11-socket, drover, gunicorn gthread), and
   `conns` (the sockets seen) would show a churn as more than N.
   (`ss -p` would name wrk's sockets directly, but it maps sockets to
   processes before it dumps them, so a socket opened in between loses its
   owner: local ports are exact.)

Prints one line:
  probe n=21 answered=21 unanswered=0 max_ms=3.1 p50_ms=0.6 served=50 conns=50 min_kb=.. max_kb=..
p50 counts an unanswered client as infinitely slow (p50 "inf" when more than
half were unanswered); max_ms is over the answered ones.
Standard library only (no new dependency).
"""
import argparse
import re
import socket
import subprocess
import threading
import time


def one_client(port, deadline_abs, t0, out, ports, lock):
    """Time one new client: connect, GET, read a complete response."""
    start = time.monotonic()
    res = None
    try:
        s = socket.create_connection(("127.0.0.1", port),
                                     timeout=max(0.01, deadline_abs - start))
        with lock:
            ports.add(s.getsockname()[1])
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        buf = b""
        need = None
        while True:
            left = deadline_abs - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                # RFC 9112 6.3: without Content-Length the body ends at close.
                if b"\r\n\r\n" in buf:
                    res = time.monotonic() - start
                break
            buf += chunk
            if need is None and b"\r\n\r\n" in buf:
                head, _, _ = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                need = len(head) + 4 + int(m.group(1)) if m else -1
            if need is not None and need >= 0 and len(buf) >= need:
                res = time.monotonic() - start
                break
        s.close()
    except OSError:
        pass
    with lock:
        out.append(res)


def served(port, own_ports):
    """(served, seen, per-connection received bytes) of wrk's sockets."""
    try:
        txt = subprocess.run(["ss", "-tniH", "state", "established", "dst", f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    got = []
    lines = txt.splitlines()
    i = 0
    while i < len(lines):
        fields = lines[i].split()
        info = lines[i + 1] if i + 1 < len(lines) and lines[i + 1][:1].isspace() else ""
        i += 2 if info else 1
        if len(fields) < 4 or fields[3] != f"127.0.0.1:{port}":
            continue
        if int(fields[2].rsplit(":", 1)[1]) in own_ports:
            continue
        m = re.search(r"bytes_received:(\d+)", info)
        got.append(int(m.group(1)) if m else 0)
    return sum(1 for b in got if b > 0), len(got), got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True, help="wrk's -d, seconds")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=3.0)
    a = ap.parse_args()
    t0 = time.monotonic()
    load_end = t0 + a.duration
    out, ports, lock, threads = [], set(), threading.Lock(), []
    for k in range(a.count):
        at = t0 + 0.5 + k * a.interval
        if at >= load_end - 0.2:
            break
        time.sleep(max(0.0, at - time.monotonic()))
        # answered only after the load stopped = starved for the whole run
        dl = min(time.monotonic() + a.timeout, load_end)
        th = threading.Thread(target=one_client, args=(a.port, dl, t0, out, ports, lock), daemon=True)
        th.start()
        threads.append(th)
    time.sleep(max(0.0, load_end - 0.4 - time.monotonic()))
    with lock:
        own = set(ports)
    sv = served(a.port, own)
    for th in threads:
        th.join(a.timeout + 1)
    with lock:
        waits = list(out)
    ok = sorted(w * 1e3 for w in waits if w is not None)
    n, un = len(waits), sum(1 for w in waits if w is None)
    allw = ok + [float("inf")] * un
    p50 = allw[(len(allw) - 1) // 2] if allw else float("nan")
    line = (f"probe n={n} answered={len(ok)} unanswered={un} "
            f"max_ms={ok[-1] if ok else float('nan'):.1f} p50_ms={p50:.1f}")
    if sv:
        kb = sorted(sv[2])
        line += (f" served={sv[0]} conns={sv[1]} min_kb={kb[0] / 1024 if kb else 0:.0f}"
                 f" max_kb={kb[-1] / 1024 if kb else 0:.0f}")
    else:
        line += " served=? conns=?"
    print(line, flush=True)


if __name__ == "__main__":
    main()
