"""Issue 12 gap i: a worker whose RSS grows and then plateaus (contrib's
settle.so: a warm-up cache, 48 MB resident along 1 - e^(-t/1s)) shows the
verdict "settling" in /status.json while it bends, then "normal", and is
left alone -- no trim, no recycle -- with rss_growth_limit set."""
import json
import os

from conftest import BUILD, Load, free_port, get, wait_until

SETTLE = "so:" + os.path.join(BUILD, "contrib", "settle.so")


def test_settling_worker_is_left_alone(drover):
    mport = free_port()
    d = drover(SETTLE, "-w", "1", "--rss-growth-limit", "100M", "--recycle-warmup", "0",
               "--smaps-interval", "0.2", "--sample-interval", "0.2",
               "--metrics-bind", str(mport), env={"SETTLE_MB": "48", "SETTLE_TAU": "1"})
    pid = d.wait_workers(1)[0]
    seen = []

    def worker():
        w = json.loads(get(f"http://127.0.0.1:{mport}/status.json")[2])["workers"][0]
        seen.append((w["memory"]["verdict"], w["memory"]["rss_growth_kb"]))
        return w
    with Load(d.url + "/", threads=2) as load:
        w = wait_until(lambda: (lambda w: w if w["memory"]["verdict"] == "settling" else None)(
            worker()), 10, "the verdict settling")
        assert w["pid"] == pid and w["memory"]["rss_growth_kb"] > 8 * 1024, w
        # on to the plateau: the 48 MB resident (baseline + growth), verdict normal
        wait_until(lambda: (lambda w: w if w["memory"]["verdict"] == "normal" and
                            w["memory"]["baseline_kb"] + w["memory"]["rss_growth_kb"] >
                            46 * 1024 else None)(worker()),
                   15, f"the plateau, verdict normal; seen {seen[-10:]}")
    assert load.failures == [], load.failures[:5]
    verdicts = {v for v, _ in seen}
    assert verdicts <= {"warming", "normal", "settling"}, seen
    assert d.workers() == [pid]
    assert "recycling" not in d.log() and "malloc_trim" not in d.log()
    w = worker()
    assert w["memory"]["rss_growth_kb"] < 60 * 1024, w
