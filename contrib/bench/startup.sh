#!/usr/bin/env bash
# Start and respawn under preload, beside gunicorn, in one sitting, for the
# Flask example (contrib/examples/flask_app.py):
#   start:   from exec to the first 200, with 16 workers (median of ROUNDS);
#   respawn: one worker (so nothing else can answer), SIGKILLed; from the
#            kill to the first 200 of its replacement (median of KILLS).
# Each with and without preload (drover --preload, gunicorn --preload).
# usage: contrib/bench/startup.sh [-w WORKERS] [-r ROUNDS] [-k KILLS]
#   DROVER_BUILD (default build/).  Prints one line per server and a line
#   "startup: ..." (drover / gunicorn times) that all.sh reads.
set -u
W=16 R=3 K=5
while getopts w:r:k: o; do
  case $o in w) W=$OPTARG ;; r) R=$OPTARG ;; k) K=$OPTARG ;; *) exit 2 ;; esac
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${DROVER_BUILD:-$ROOT/build}" && pwd) || exit 2
cd "$ROOT/contrib/examples" || exit 2
exec /usr/bin/python3 - "$BUILD/supervisor/drover" "$W" "$R" "$K" <<'PY'
import os, signal, socket, subprocess, sys, time

drover, W, R, K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
port = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(p):
    try:
        with socket.create_connection(("127.0.0.1", p), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_answer(p, deadline):
    while time.monotonic() < deadline:
        if answers(p):
            return True
        time.sleep(0.002)
    return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def cmd(server, workers, preload, p):
    pre = ["--preload"] if preload else []
    if server == "drover":
        return [drover, "-w", str(workers), "-b", f"127.0.0.1:{p}", "--log-level", "warning",
                *pre, "flask_app:app"]
    return ["gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{p}", "--log-level", "warning",
            *pre, "flask_app:app"]


def stop(m):
    m.send_signal(signal.SIGTERM)
    try:
        m.wait(15)
    except subprocess.TimeoutExpired:
        m.kill()
        m.wait()


def start_time(server, preload):
    global port
    times = []
    for _ in range(R):
        port = free_port()
        t0 = time.monotonic()
        m = subprocess.Popen(cmd(server, W, preload, port), stderr=subprocess.DEVNULL)
        ok = wait_answer(port, t0 + 60)
        times.append((time.monotonic() - t0) * 1000 if ok else float("nan"))
        stop(m)
    times.sort()
    return times[len(times) // 2]


def respawn_time(server, preload):
    global port
    port = free_port()
    m = subprocess.Popen(cmd(server, 1, preload, port), stderr=subprocess.DEVNULL)
    gaps = []
    try:
        if not wait_answer(port, time.monotonic() + 60):
            return float("nan")
        for _ in range(K):
            kids = children(m.pid)
            if len(kids) != 1:
                time.sleep(0.05)
                continue
            t0 = time.monotonic()
            os.kill(kids[0], signal.SIGKILL)
            # the listen queue holds the request until the replacement accepts
            ok = wait_answer(port, t0 + 60)
            gaps.append((time.monotonic() - t0) * 1000 if ok else float("nan"))
            while kids[0] in children(m.pid):
                time.sleep(0.005)
    finally:
        stop(m)
    gaps.sort()
    return gaps[len(gaps) // 2] if gaps else float("nan")


print(f"# Flask example; start: exec -> first 200 with {W} workers (median of {R}); "
      f"respawn: 1 worker SIGKILLed -> first 200 (median of {K}); {os.cpu_count()} cores")
res = {}
for preload in (False, True):
    for server in ("drover", "gunicorn"):
        s, r = start_time(server, preload), respawn_time(server, preload)
        name = f"{server}{'-preload' if preload else ''}"
        res[name] = (s, r)
        print(f"{name:<18} start_ms={s:<8.0f} respawn_ms={r:.0f}")
line = "startup:"
for sfx in ("", "-preload"):
    d, g = res["drover" + sfx], res["gunicorn" + sfx]
    line += f" start{sfx}={d[0] / g[0]:.2f} respawn{sfx}={d[1] / g[1]:.2f}"
print(line + " (drover time / gunicorn time)")
PY
