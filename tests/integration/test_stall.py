"""Stall reports from the worker's watchdog (issue 10 parts 1-4): a C app and
a Python app that block their serving thread in resolve_host(); the log names
the site with the stack captured during the stall, a second line gives the
final duration, the counts reach /status.json and /metrics, reports are
rate-limited per site, and stall_action = recycle replaces the worker."""
import json
import os
import re
import threading

from conftest import BUILD, APPS_DIR, get, wait_until

BLOCKER = "so:" + os.path.join(BUILD, "tests", "blocker.so")
# the C site: file:line from the debug info (built with libdw), else object+offset
CSITE = r"\((?:blocker\.c:\d+|blocker\.so\+0x[0-9a-f]+)\)"


def block(d, ms):
    return get(f"{d.url}/block?ms={ms}", timeout=10)


def status(d):
    return json.loads(get(f"http://127.0.0.1:{d.metrics_port}/status.json")[2])


def test_event_c_stall_named_with_stack(drover):
    d = drover(BLOCKER, "-k", "event", "-w", "1", "--stall-threshold", "100ms")
    mark = d.log_mark()
    block(d, 300)
    line = d.wait_log(r"stall (\d+) ms in worker 1 \(pid \d+\) at resolve_host "
                      + CSITE + r" during GET /block\?ms=300 from 127\.0\.0\.1:\d+",
                      since=mark)
    ms = int(line.group(1))
    assert 100 <= ms < 300, line.group(0)
    assert re.search(r"#\d+ resolve_host " + CSITE, d.log()[mark:])
    end = d.wait_log(r"stall ended after (\d+) ms in worker 1 .* at resolve_host", since=mark)
    assert int(end.group(1)) >= 290, end.group(0)
    # a quick request is no stall
    mark = d.log_mark()
    block(d, 0)
    get(d.url + "/")
    assert "stall" not in d.log()[mark:]


def test_python_slow_request_thread_model(drover):
    d = drover("stall_app:app", "-k", "thread", "-w", "1", "--threads", "2",
               "--slow-request", "200ms", "--pythonpath", APPS_DIR)
    mark = d.log_mark()
    block(d, 500)
    line = d.wait_log(r"stall \d+ ms in worker 1 \(pid \d+\) at resolve_host \(stall_app\.py:7\) "
                      r"during GET /block\?ms=500", since=mark)
    assert line
    log = d.log()[mark:]
    assert re.search(r'Current thread 0x[0-9a-f]+ \(most recent call first\):\n'
                     r'  File ".*stall_app\.py", line 7 in resolve_host', log), log
    d.wait_log(r"stall ended after \d+ ms .* at resolve_host \(stall_app\.py:7\)", since=mark)


def test_stats_and_rate_limit(drover):
    mport = __import__("conftest").free_port()
    d = drover(BLOCKER, "-k", "thread", "-w", "1", "--threads", "4", "--slow-request", "50ms",
               "--stall-log-interval", "1h", "--metrics-bind", str(mport))
    d.metrics_port = mport
    mark = d.log_mark()
    ts = [threading.Thread(target=block, args=(d, 200)) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    block(d, 200)

    def counted():
        st = status(d)["stalls"]
        return st if st["count"] == 4 and st["sites"] and st["sites"][0]["seconds"] >= 0.5 else None
    st = wait_until(counted, 10, "4 stalls counted")
    assert re.fullmatch(r"resolve_host " + CSITE, st["sites"][0]["site"]), st
    assert sum(b["count"] for b in st["histogram"]) == 4
    # one report for the site within stall_log_interval, the rest counted only
    assert len(re.findall(r"\] stall \d+ ms", d.log()[mark:])) == 1
    metrics = get(f"http://127.0.0.1:{mport}/metrics")[2].decode()
    assert re.search(r'^drover_stalls_total\{site="resolve_host ' + CSITE + r'"\} 4$',
                     metrics, re.M), metrics
    assert re.search(r'^drover_stall_seconds_count 4$', metrics, re.M)
    assert re.search(r'^drover_stall_seconds_bucket\{le="0\.1"\} 0$', metrics, re.M)


def test_stall_action_recycle(drover):
    d = drover(BLOCKER, "-k", "event", "-w", "1", "--stall-threshold", "50ms",
               "--stall-action", "recycle", "--stall-recycle-after", "2")
    old = d.workers()
    assert len(old) == 1
    block(d, 120)
    block(d, 120)
    d.wait_log(r"stalled 2 times within a minute: replacing it \(stall_action = recycle\)",
               timeout=10)
    wait_until(lambda: d.workers() and set(d.workers()).isdisjoint(old), 15,
               "the stalling worker replaced")
    assert get(d.url + "/")[0] == 200
