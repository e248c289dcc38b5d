#!/usr/bin/python3
"""Open-loop HTTP load generator: requests start on a fixed schedule whether
or not earlier ones finished (wrk and ab are closed-loop: a slow server slows
the client down and the queueing never shows).  Python 3 from Debian only.

    loadgen.py HOST:PORT [--path /x] --schedule 40:10s,160:20s,40:20s [--json]

Each request has its own connection (Connection: close).  Printed per step:
requests sent, completed throughput, p50/p95/p99 latency, errors (connect
failures, resets, non-2xx) and timeouts.  In-flight requests are bounded
(--max-inflight); a start that finds the bound reached counts as an error.
"""
import argparse
import errno
import json
import selectors
import socket
import sys
import time


def parse_schedule(text):
    steps = []
    for part in text.split(","):
        rate, dur = part.split(":")
        dur = dur.strip()
        if dur.endswith("ms"):
            secs = float(dur[:-2]) / 1000
        elif dur.endswith("s"):
            secs = float(dur[:-1])
        else:
            secs = float(dur)
        steps.append((float(rate), secs))
    return steps


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


class Step:
    def __init__(self, rate, secs):
        self.rate, self.secs = rate, secs
        self.sent = self.ok = self.errors = self.timeouts = 0
        self.lat = []
        self.done_in_step = 0

    def report(self):
        lat = sorted(self.lat)
        return {
            "rate": self.rate, "seconds": self.secs, "sent": self.sent, "ok": self.ok,
            "errors": self.errors, "timeouts": self.timeouts,
            "throughput": self.done_in_step / self.secs if self.secs else 0,
            "p50_ms": percentile(lat, 0.50) * 1e3, "p95_ms": percentile(lat, 0.95) * 1e3,
            "p99_ms": percentile(lat, 0.99) * 1e3,
        }


class Req:
    __slots__ = ("sock", "step", "t0", "out", "buf")

    def __init__(self, sock, step, t0, out):
        self.sock, self.step, self.t0, self.out, self.buf = sock, step, t0, out, b""


def run(addr, path, steps, timeout, max_inflight, host_header):
    sel = selectors.DefaultSelector()
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % (path, host_header)).encode()
    inflight = {}
    start = time.monotonic()
    bounds, t = [], start
    for s in steps:
        bounds.append((t, t + s.secs, s))
        t += s.secs
    end_all = t

    def finish(r, ok, is_timeout=False):
        sel.unregister(r.sock)
        r.sock.close()
        del inflight[id(r)]
        now = time.monotonic()
        if ok:
            r.step.ok += 1
            r.step.lat.append(now - r.t0)
        elif is_timeout:
            r.step.timeouts += 1
        else:
            r.step.errors += 1
        for b0, b1, s in bounds:
            if b0 <= now < b1 and ok:
                s.done_in_step += 1

    def start_one(step, t0):
        step.sent += 1
        if len(inflight) >= max_inflight:
            step.errors += 1
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            step.errors += 1
            return
        r = Req(sock, step, t0, request)
        inflight[id(r)] = r
        sel.register(sock, selectors.EVENT_WRITE, r)

    def on_event(r, mask):
        try:
            if r.out:
                n = r.sock.send(r.out)
                r.out = r.out[n:]
                if not r.out:
                    sel.modify(r.sock, selectors.EVENT_READ, r)
                return
            data = r.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            finish(r, False)
            return
        if data:
            r.buf += data
            return
        status = r.buf[9:12]
        finish(r, r.buf.startswith(b"HTTP/1.") and status[:1] == b"2")

    idx, next_t = 0, start
    while True:
        now = time.monotonic()
        # Starts due by now, at the rate of the step they fall in.
        while next_t <= now and next_t < end_all:
            while idx < len(bounds) and next_t >= bounds[idx][1]:
                idx += 1
            if idx >= len(bounds):
                break
            step = bounds[idx][2]
            start_one(step, next_t)
            next_t += 1.0 / step.rate if step.rate > 0 else bounds[idx][1] - next_t
        for r in [r for r in inflight.values() if now - r.t0 > timeout]:
            finish(r, False, True)
        if next_t >= end_all and not inflight:
            break
        if now > end_all + timeout + 1:
            break
        wait = max(0.0, min(next_t - time.monotonic(), 0.05)) if next_t < end_all else 0.05
        for key, mask in sel.select(wait):
            if id(key.data) in inflight:
                on_event(key.data, mask)
    total = Step(0, end_all - start)
    for s in steps:
        total.sent += s.sent
        total.ok += s.ok
        total.errors += s.errors
        total.timeouts += s.timeouts
        total.lat += s.lat
        total.done_in_step += s.done_in_step
    total.rate = total.sent / total.secs if total.secs else 0
    return [s.report() for s in steps], total.report()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("address", help="HOST:PORT")
    ap.add_argument("--path", default="/")
    ap.add_argument("--schedule", default="40:10s,160:20s,40:20s",
                    help="RATE:DURATION,... (requests per second : seconds)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    ap.add_argument("--max-inflight", type=int, default=2000)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = ap.parse_args()
    host, port = a.address.rsplit(":", 1)
    steps = [Step(r, s) for r, s in parse_schedule(a.schedule)]
    reports, total = run((host, int(port)), a.path, steps, a.timeout, a.max_inflight, a.address)
    if a.json:
        json.dump({"steps": reports, "total": total}, sys.stdout)
        print()
        return
    print("%8s %6s %7s %7s %8s %8s %8s %6s %8s" % ("rate", "secs", "sent", "ok", "thr/s",
          "p50ms", "p95ms", "p99ms", "errors") + " timeouts")
    for r in reports + [total]:
        print("%8.0f %6.1f %7d %7d %8.1f %8.1f %8.1f %8.1f %6d %8d" % (
            r["rate"], r["seconds"], r["sent"], r["ok"], r["throughput"], r["p50_ms"],
            r["p95_ms"], r["p99_ms"], r["errors"], r["timeouts"]))


if __name__ == "__main__":
    main()
