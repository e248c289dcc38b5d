"""Issue 12 gaps f-h: max_requests goes through the graceful replace path
(the worker asks the master before its budget runs out; the successor
accepts before the old worker drains), the recycle-all master signal
(SIGURG) does what `drover ctl recycle all` does, and recycle_warmup takes a
request count too."""
import json
import re
import signal

import pytest

from conftest import ECHO_SO, Load, free_port, get, wait_until


def status(port):
    return json.loads(get(f"http://127.0.0.1:{port}/status.json")[2])


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_max_requests_turnover_uses_the_replace_path(drover, model):
    mport = free_port()
    d = drover("so:" + ECHO_SO, "-k", model, "-w", "2", "--threads", "2", "--max-requests", "100",
               "--max-requests-jitter", "20", "--metrics-bind", str(mport))
    with Load(d.url + "/", threads=3) as load:
        wait_until(lambda: status(mport)["master"]["recycled"]["max_requests"] >= 4, 30,
                   "4 max_requests recycles")
    assert load.failures == [], load.failures[:5]
    log = d.log()
    # asked before the budget ran out (90% of 100..120), then the replace path
    assert re.search(r"worker \d+ served \d+ of max_requests 1[012]\d: asking for a replacement",
                     log), log[-3000:]
    assert re.search(r"worker \d+ \(pid \d+\): recycling \(max_requests, \d+ served\)", log)
    assert re.search(r"worker \d+ \(pid \d+\) accepting: draining worker \d+ \(pid \d+\)", log)
    assert "no replacement within" not in log
    m = get(f"http://127.0.0.1:{mport}/metrics")[2].decode()
    assert int(re.search(r'^drover_recycles_total\{reason="max_requests"\} (\d+)', m,
                         re.M).group(1)) >= 4
    assert len(d.wait_workers(2)) == 2


def test_urg_recycles_every_worker_gracefully(drover):
    mport = free_port()
    d = drover("so:" + ECHO_SO, "-k", "thread", "-w", "2", "--metrics-bind", str(mport))
    first = set(d.wait_workers(2))
    with Load(d.url + "/", threads=3) as load:
        d.signal(signal.SIGURG)
        d.wait_log(r"URG: recycling all 2 workers, 1 at a time")
        wait_until(lambda: not first & set(d.workers()) and len(d.workers()) == 2, 20,
                   "both workers replaced")
    assert load.failures == [], load.failures[:5]
    assert status(mport)["master"]["recycled"]["requested"] == 2
    log = d.log()
    for pid in first:
        assert re.search(rf"worker \d+ \(pid {pid}\): recycling \(requested\)", log), log
        assert re.search(rf"accepting: draining worker \d+ \(pid {pid}\)", log), log
    assert d.alive()


def test_recycle_warmup_by_request_count(drover):
    """recycle_warmup = 1 h, recycle_warmup_requests = 50: the baseline comes
    with the requests, long before the hour."""
    mport = free_port()
    d = drover("so:" + ECHO_SO, "-w", "1", "--recycle-warmup", "1h",
               "--recycle-warmup-requests", "50", "--smaps-interval", "0.2",
               "--sample-interval", "0.2", "--metrics-bind", str(mport))

    def worker():
        return status(mport)["workers"][0]
    for _ in range(10):
        assert get(d.url + "/")[0] == 200
    w = wait_until(lambda: (lambda w: w if w["requests"] >= 10 else None)(worker()), 10,
                   "10 requests counted")
    assert w["memory"]["verdict"] == "warming" and w["memory"]["baseline_kb"] is None, w
    for _ in range(50):
        assert get(d.url + "/")[0] == 200
    w = wait_until(lambda: (lambda w: w if w["memory"]["baseline_kb"] else None)(worker()), 10,
                   "a baseline after 50 requests")
    assert w["memory"]["verdict"] != "warming", w
