"""Memory verdicts and recycling (issue 12): a C app and a Python app that
fragment their heap are trimmed, then recycled gracefully; a trimmable
fragmentation is cured by malloc_trim alone; a leaking app is reported as a
leak and recycled at max_rss; all under continuous load with no failed
request.  The apps are contrib/examples/{fragment.c,leak.c,fragment.py}."""
import json
import os
import re
import subprocess

import pytest

from conftest import BUILD, DROVER_BIN, REPO, Load, get, wait_until

FRAG_SO = os.path.join(BUILD, "contrib", "fragment.so")
LEAK_SO = os.path.join(BUILD, "contrib", "leak.so")
EXAMPLES = os.path.join(REPO, "contrib", "examples")
FAST = ["--recycle-warmup", "0.3", "--sample-interval", "0.1", "--smaps-interval", "0.1",
        "--heap-sample-interval", "0.1"]


def status(d):
    p = subprocess.run([DROVER_BIN, "ctl", "--control", os.path.join(d.dir, "drover.ctl"),
                        "--json", "status"], capture_output=True, text=True, timeout=10)
    return json.loads(p.stdout)["workers"] if p.returncode == 0 else []


def baselines_set(d, n):
    ws = [w for w in status(d) if w["memory"]["baseline_kb"] is not None]
    return len(ws) >= n and ws


def load_on(d):
    """Continuous GET / on fresh connections from two threads."""
    return Load(d.url + "/")


def grow_until(d, path, regex, what, timeout=25):
    """Send path (a request that grows a worker) until regex is in the log."""
    def step():
        get(d.url + path, timeout=20)
        return re.search(regex, d.log())
    return wait_until(step, timeout, what, interval=0.05)


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_c_fragmentation_trimmed_then_recycled(drover, model):
    # One request thread in the thread model: with several, the bursts land
    # in several malloc arenas, and trimming their free tops can give back
    # more than half (79 of 144 MB seen) though the worker is still over
    # the limit and recycled; the check below is about one fragmented heap.
    threads = ["--threads", "1"] if model == "thread" else []
    d = drover("so:" + FRAG_SO, "-w", "2", "-k", model, "--rss-growth-limit", "24M", *threads,
               *FAST)
    wait_until(lambda: baselines_set(d, 2), 10, "baselines")
    before = set(d.workers())
    with load_on(d) as load:
        m = grow_until(d, "/grow?mb=48", r"worker \d+ \(pid (\d+)\): heap fragmented, RSS "
                       r"\+(\d+) MB with [+-]\d+ MB in use; malloc_trim returned (-?\d+) MB",
                       "the trim")
        pid, growth, returned = int(m.group(1)), int(m.group(2)), int(m.group(3))
        assert growth > 24 and returned < growth / 2, m.group(0)
        d.wait_log(rf"worker \d+ \(pid {pid}\): recycling \(fragmentation\)", timeout=10)
        wait_until(lambda: pid not in d.workers() and len(d.workers()) == 2, 15,
                   "the fragmented worker replaced")
        n = load.ok
        wait_until(lambda: load.ok > n + 5, 10, "load after the recycle")
    assert load.failures == [], load.failures[:5]
    assert len(before - set(d.workers())) >= 1


def test_c_trimmable_fragmentation_cured_by_trim(drover):
    d = drover("so:" + FRAG_SO, "-w", "1", "--rss-growth-limit", "24M", *FAST)
    wait_until(lambda: baselines_set(d, 1), 10, "baseline")
    [pid] = d.workers()
    with load_on(d) as load:
        # One burst only: another would fill the pages the trim gave back.
        assert get(d.url + "/grow?mb=48&sparse=1", timeout=20)[0] == 200
        m = d.wait_log(r"heap fragmented, RSS \+(\d+) MB with [+-]\d+ MB in use; "
                       r"malloc_trim returned (\d+) MB", timeout=15)
        assert int(m.group(2)) > 24, m.group(0)
        n = load.ok
        wait_until(lambda: load.ok > n + 20, 10, "load after the trim")
    assert "recycling" not in d.log()
    assert d.workers() == [pid]
    assert load.failures == [], load.failures[:5]


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_c_leak_reported_and_recycled_at_max_rss(drover, model):
    d = drover("so:" + LEAK_SO, "-w", "1", "-k", model, "--max-rss", "96M", *FAST)
    wait_until(lambda: baselines_set(d, 1), 10, "baseline")
    [pid] = d.workers()
    with load_on(d) as load:
        def leak_seen():
            get(d.url + "/grow?mb=2", timeout=20)
            ws = [w for w in status(d) if w["pid"] == pid]
            assert ws, "recycled before it was called a leak"
            return ws[0]["memory"]["verdict"] == "leak"
        wait_until(leak_seen, 20, "the leak verdict", interval=0.05)
        grow_until(d, "/grow?mb=2", rf"worker \d+ \(pid {pid}\): recycling \(leak\), "
                   r"RSS \+\d+ MB with \+\d+ MB in use, over max_rss", "the recycle")
        wait_until(lambda: d.workers() and pid not in d.workers(), 15, "replaced")
        n = load.ok
        wait_until(lambda: load.ok > n + 5, 10, "load after the recycle")
    assert "heap fragmented" not in d.log()
    assert load.failures == [], load.failures[:5]


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_python_fragmentation_seen_through_pymalloc(drover, model):
    d = drover("fragment:app", "-w", "1", "-k", model, "--chdir", EXAMPLES,
               "--rss-growth-limit", "24M", *FAST)
    wait_until(lambda: baselines_set(d, 1), 15, "baseline")
    [pid] = d.workers()
    with load_on(d) as load:
        # One burst: more would be caught mid-request by the thread model's
        # heap samples, and their temporary objects are in use.
        assert get(d.url + "/grow?n=1500000", timeout=20)[0] == 200

        def fragmented():
            ws = [w for w in status(d) if w["pid"] == pid]
            # (the event model refreshes heap figures once a loop tick, 1 s)
            return not ws or (ws[0]["memory"]["verdict"] == "fragmentation" and
                              ws[0]["memory"]["py_arena_kb"] > 24 * 1024 and ws[0])
        w = wait_until(fragmented, 20, "the fragmentation verdict", interval=0.1)
        if isinstance(w, dict):  # seen before the recycle: the arenas carry the growth
            mem = w["memory"]
            assert mem["py_arena_kb"] > 24 * 1024, mem
            assert mem["in_use_growth_kb"] < mem["rss_growth_kb"] / 4, mem
        d.wait_log(rf"worker \d+ \(pid {pid}\): recycling \(fragmentation\)", timeout=15)
        wait_until(lambda: d.workers() and pid not in d.workers(), 15, "replaced")
        n = load.ok
        wait_until(lambda: load.ok > n + 5, 10, "load after the recycle")
    assert load.failures == [], load.failures[:5]


def test_growth_under_the_limit_left_alone(drover):
    """A heap that grows a little and settles stays: no trim, no recycle, and
    the verdict is not fragmentation or leak."""
    d = drover("so:" + FRAG_SO, "-w", "1", "--rss-growth-limit", "64M", *FAST)
    wait_until(lambda: baselines_set(d, 1), 10, "baseline")
    [pid] = d.workers()
    with load_on(d) as load:
        for mb in (8, 12, 14, 15, 15):
            assert get(d.url + f"/grow?mb={mb}", timeout=20)[0] == 200
        wait_until(lambda: status(d)[0]["memory"]["rss_growth_kb"] > 6 * 1024, 10, "growth")
        n = load.ok
        wait_until(lambda: load.ok > n + 50, 10, "more load")
        verdict = status(d)[0]["memory"]["verdict"]
    assert verdict in ("normal", "settling"), verdict
    assert "heap fragmented" not in d.log() and "recycling" not in d.log()
    assert d.workers() == [pid]
    assert load.failures == [], load.failures[:5]


def test_recycle_all_one_at_a_time_under_load(drover):
    d = drover("so:" + FRAG_SO, "-w", "3", *FAST)
    old = set(d.wait_workers(3))
    wait_until(lambda: baselines_set(d, 3), 10, "tracked")
    with load_on(d) as load:
        p = subprocess.run([DROVER_BIN, "ctl", "--control", os.path.join(d.dir, "drover.ctl"),
                            "--json", "recycle", "all"], capture_output=True, text=True,
                           timeout=10)
        assert json.loads(p.stdout) == {"ok": True, "recycling": 3}, (p.stdout, p.stderr)
        most_out = [0]

        def done():
            ws = set(d.workers())
            # old workers still alive beyond the 3 wanted: being replaced now
            most_out[0] = max(most_out[0], len(ws) - 3)
            return len(ws) == 3 and not ws & old
        wait_until(done, 30, "every worker replaced")
        n = load.ok
        wait_until(lambda: load.ok > n + 5, 10, "load after")
    assert most_out[0] <= 1, most_out  # recycle_concurrency = 1
    assert len(re.findall(r"recycling \(requested\)", d.log())) == 3
    assert load.failures == [], load.failures[:5]


def test_max_age_recycles_gracefully(drover):
    d = drover("so:" + FRAG_SO, "-w", "1", "--max-age", "1.5", "--max-age-jitter", "0.5",
               *FAST)
    [pid] = d.wait_workers(1)
    with load_on(d) as load:
        d.wait_log(rf"worker 1 \(pid {pid}\): recycling \(max_age, \d+ s old\)", timeout=10)
        wait_until(lambda: d.workers() and pid not in d.workers(), 15, "replaced")
        n = load.ok
        wait_until(lambda: load.ok > n + 5, 10, "load after")
    assert load.failures == [], load.failures[:5]
