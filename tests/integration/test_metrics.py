"""The HTTP metrics listener and the Prometheus exposition: GET /metrics is
parsed back and its grammar checked (a parser written here: promtool is not
in Debian), GET /status.json is JSON, and slow or bad clients do not stall
the master."""
import json
import math
import re
import socket
import time

from conftest import HELLO_SO, ECHO_SO, free_port, get, http, status_of, wait_until

HELLO = "so:" + HELLO_SO
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; raises
    AssertionError on any line that breaks the text format 0.0.4."""
    assert text.endswith("\n")
    fams, current = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), line
            fams.setdefault(name, {"samples": []})["help"] = help_
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert typ in TYPES, line
            fam = fams.setdefault(name, {"samples": []})
            assert "type" not in fam, f"second TYPE for {name}"
            assert not fam["samples"], f"TYPE after samples for {name}"
            fam["type"] = typ
            current = name
        elif line.startswith("#") or not line:
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"bad sample line: {line!r}"
            name, labels, value = m.groups()
            float(value.replace("+Inf", "inf").replace("-Inf", "-inf"))
            fam = name
            if current and fams[current].get("type") == "histogram":
                for suf in ("_bucket", "_sum", "_count"):
                    if name == current + suf:
                        fam = current
            assert fam == current, f"{name} outside its family block ({current})"
            lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels or ""))
            fams[fam]["samples"].append((name, lab, float(value.replace("+Inf", "inf"))))
    for name, fam in fams.items():
        assert "type" in fam and "help" in fam, name
        if fam["type"] == "counter":
            assert name.endswith("_total"), name
    return fams


def check_histograms(fams):
    for name, fam in fams.items():
        if fam["type"] != "histogram":
            continue
        series = {}
        for sname, lab, v in fam["samples"]:
            key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
            series.setdefault(key, {"b": []})
            if sname.endswith("_bucket"):
                series[key]["b"].append((float(lab["le"].replace("+Inf", "inf")), v))
            else:
                series[key][sname[len(name) + 1:]] = v
        for key, s in series.items():
            les = [le for le, _ in s["b"]]
            counts = [c for _, c in s["b"]]
            assert les == sorted(les) and math.isinf(les[-1]), key
            assert counts == sorted(counts), key
            assert counts[-1] == s["count"], key
            assert s["sum"] >= 0


def start(drover, *extra):
    port = free_port()
    d = drover(HELLO, "-w", "2", "--metrics-bind", f"127.0.0.1:{port}",
               "--sample-interval", "0.2", *extra)
    d.mport = port
    return d


def test_metrics_exposition_grammar_and_content(drover):
    d = start(drover)
    pids = d.wait_workers(2)
    for _ in range(40):
        assert get(d.url + "/")[0] == 200
    mu = f"http://127.0.0.1:{d.mport}/metrics"

    def scraped():
        st, hdr, body = get(mu)
        assert st == 200 and hdr["Content-Type"].startswith("text/plain; version=0.0.4")
        fams = parse_exposition(body.decode())
        tot = sum(v for _, _, v in fams["drover_requests_total"]["samples"])
        return fams if tot >= 40 else None
    fams = wait_until(scraped, 10, "40 requests counted", interval=0.1)
    check_histograms(fams)
    assert fams["drover_requests_total"]["type"] == "counter"
    assert fams["drover_request_duration_seconds"]["type"] == "histogram"
    assert {int(l["pid"]) for _, l, _ in fams["drover_requests_total"]["samples"]} == set(pids)
    kinds = {l["kind"] for _, l, _ in fams["drover_worker_context_switches_total"]["samples"]}
    assert kinds == {"voluntary", "involuntary"}
    modes = {l["mode"] for _, l, _ in fams["drover_worker_cpu_seconds_total"]["samples"]}
    assert modes == {"user", "system"}
    for f in ("drover_worker_resident_memory_bytes", "drover_worker_threads",
              "drover_listen_queue_limit", "drover_host_load_average", "drover_workers_target",
              "drover_cpu_effective_cpus", "drover_worker_pss_bytes"):
        assert fams[f]["samples"], f
    assert all(v > 0 for _, _, v in fams["drover_worker_resident_memory_bytes"]["samples"])
    ok = [v for _, l, v in fams["drover_responses_total"]["samples"] if l["class"] == "2xx"]
    assert sum(ok) >= 40


def test_status_json_and_errors(drover):
    d = start(drover)
    d.wait_workers(2)
    base = f"http://127.0.0.1:{d.mport}"
    st, hdr, body = get(base + "/status.json")
    assert st == 200 and hdr["Content-Type"] == "application/json"
    js = json.loads(body)
    assert js["master"]["pid"] == d.pid and len(js["workers"]) == 2
    assert get(base + "/nope")[0] == 404
    assert get(base + "/metrics", method="POST", data=b"x")[0] == 405
    raw = http(d.mport, b"GARBAGE\r\n\r\n")
    assert status_of(raw) == 400
    raw = http(d.mport, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")
    assert status_of(raw) == 431


def test_slow_clients_do_not_stall(drover):
    d = start(drover)
    held = []
    for i in range(24):  # more than the client cap, each sending half a head
        s = socket.create_connection(("127.0.0.1", d.mport))
        try:
            s.sendall(b"GET /metr")
        except OSError:
            pass
        held.append(s)
    t0 = time.monotonic()
    assert get(d.url + "/")[0] == 200  # the master keeps managing the pool
    assert time.monotonic() - t0 < 2
    for s in held:
        s.close()
    def scrape_ok():
        try:  # until the master has seen the held clients go, it refuses
            return get(f"http://127.0.0.1:{d.mport}/metrics")[0] == 200
        except OSError:
            return False
    wait_until(scrape_ok, 5, "metrics again")


def test_loopback_by_default(drover):
    port = free_port()
    d = drover(HELLO, "-w", "1", "--metrics-bind", f"localhost:{port}")
    d.wait_log(r"metrics at http://127\.0\.0\.1:%d/metrics" % port)
    assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200


def test_bad_metrics_bind_keeps_serving(drover):
    port = free_port()
    d = drover(HELLO, "-w", "1", "--metrics-bind", f"192.0.2.1:{port}")  # not ours: EADDRNOTAVAIL
    d.wait_log(r"metrics listener 192\.0\.2\.1:\d+: .*running without it")
    assert get(d.url + "/")[0] == 200


def test_sleeping_worker_shows_busy_and_latency(drover):
    port = free_port()
    d = drover("so:" + ECHO_SO, "-w", "1", "--metrics-bind", f"127.0.0.1:{port}",
               "--sample-interval", "0.2")
    for _ in range(5):
        assert get(d.url + "/?sleep=30")[0] == 200

    def p50():
        js = json.loads(get(f"http://127.0.0.1:{port}/status.json")[2])
        w = js["workers"][0]
        return w if w["p50_ms"] is not None else None
    w = wait_until(p50, 5, "latency figures", interval=0.1)
    assert 25 <= w["p50_ms"] <= 60  # 30 ms sleeps, in the 25.6-51.2 ms bucket
