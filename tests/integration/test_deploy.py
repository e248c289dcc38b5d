"""Issue 13 item 5: deployment beyond one host.  contrib/deploy/nginx.conf
passes `nginx -t` and, pointed at two live drovers, keeps serving when one
of them goes away; contrib/deploy/kubernetes.yaml parses and its fields
agree with each other and with drover (grace period, probes, annotations,
the HPA's metric names in drover's own /metrics); /status.json is a
readiness probe (503 without a ready worker)."""
import configparser
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import DROVER_BIN, HELLO_SO, REPO, free_port, get, wait_until

DEPLOY = os.path.join(REPO, "contrib", "deploy")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx not installed (nginx-light)")


def nginx_conf_text():
    with open(os.path.join(DEPLOY, "nginx.conf")) as f:
        return f.read()


@needs_nginx
def test_nginx_conf_syntax(tmp_path):
    conf = os.path.join(DEPLOY, "nginx.conf")
    p = subprocess.run([NGINX, "-t", "-c", conf, "-p", str(tmp_path),
                        "-g", f"pid {tmp_path}/nginx.pid; error_log stderr;"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "test is successful" in p.stderr
    text = nginx_conf_text()
    # what drover needs from a proxy, not only valid syntax
    for need in (r"max_fails=\d+ fail_timeout=", r"proxy_next_upstream error timeout",
                 r"keepalive \d+;", r"proxy_http_version 1\.1;", r'proxy_set_header Connection "";'):
        assert re.search(need, text), need
    assert "non_idempotent" not in re.sub(r"#.*", "", text)
    # nginx closes idle upstream connections before drover does (keepalive 5 s)
    kt = float(re.search(r"^\s*keepalive_timeout (\d+)s;", text, re.M).group(1))
    assert kt < 5


@needs_nginx
def test_nginx_in_front_of_two_drovers(drover, tmp_path):
    """The shipped config with its upstream pointed at two live drovers:
    every request succeeds before and after one drover is killed (the
    failed connection goes to the next upstream)."""
    a = drover("so:" + HELLO_SO, "-w", "1")
    b = drover("so:" + HELLO_SO, "-w", "1")
    port = free_port()
    text = nginx_conf_text()
    text = re.sub(r"(\n\s*server 10\.0\.0\.\d+:8000 [^\n]*)+",
                  f"\n        server 127.0.0.1:{a.port} max_fails=1 fail_timeout=30s;"
                  f"\n        server 127.0.0.1:{b.port} max_fails=1 fail_timeout=30s;", text, 1)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    text = text.replace("http {", "http {\n    access_log off;", 1)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    os.chmod(tmp_path, 0o755)
    ng = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path), "-g",
                           f"daemon off; "
                           f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"

        def up():
            if ng.poll() is not None:
                raise AssertionError(f"nginx exited: {ng.stderr.read().decode()}")
            try:
                return get(url, timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(up, 20, "nginx serving")
        ok = sum(get(url, timeout=10)[0] == 200 for _ in range(20))
        assert ok == 20
        b.proc.kill()  # the whole host gone: its listen socket closes
        b.proc.wait(10)
        for w in b.workers():
            os.kill(w, signal.SIGKILL)
        wait_until(lambda: not b.workers(), 10, "b's workers gone")
        statuses = [get(url, timeout=10)[0] for _ in range(20)]
        print(f"\nnginx -> 2 drovers, one killed: {statuses.count(200)}/20 answered 200")
        assert statuses == [200] * 20
    finally:
        ng.send_signal(signal.SIGQUIT)
        try:
            ng.wait(10)
        except subprocess.TimeoutExpired:
            ng.kill()
            ng.wait()


def k8s_docs():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(DEPLOY, "kubernetes.yaml")) as f:
        return list(yaml.safe_load_all(f))


def k8s_kind(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name)
    return found[0]


def effective_ini(ini_text):
    """drover's own reading of an INI (--check-config): {key: value}."""
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(ini_text)
    try:
        p = subprocess.run([DROVER_BIN, "--check-config", "-c", f.name], capture_output=True,
                           text=True, timeout=20)
    finally:
        os.unlink(f.name)
    assert p.returncode == 0, p.stderr
    cp = configparser.ConfigParser(interpolation=None, strict=False)  # lists repeat keys
    cp.read_string(p.stdout)
    return {k: v for s in cp.sections() for k, v in cp[s].items()}


def test_kubernetes_yaml_fields_agree(drover):
    docs = k8s_docs()
    cm = k8s_kind(docs, "ConfigMap", "drover-app")
    conf = effective_ini(cm["data"]["drover.ini"])
    graceful = float(conf["graceful_timeout"])
    mport = int(conf["metrics_bind"].rsplit(":", 1)[1])
    dep = k8s_kind(docs, "Deployment")
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == mport and ports["http"] == int(conf["bind"].rsplit(":", 1)[1])
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[0] == "sleep"
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    print(f"\ngrace {grace} s >= graceful_timeout {graceful} s + preStop {pre[1]} s")
    assert grace >= graceful + float(pre[1])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        hg = c[probe]["httpGet"]
        assert hg["path"] == "/status.json" and ports[hg["port"]] == mport, probe
    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == mport
    assert ann["prometheus.io/path"] == "/metrics"
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # the HPA scales this Deployment on metrics drover really exports
    hpa = k8s_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]]
    adapter = k8s_kind(docs, "ConfigMap", "adapter-config-drover")["data"]["config.yaml"]
    mp = free_port()
    d = drover("so:" + HELLO_SO, "-w", "2", "--metrics-bind", f"127.0.0.1:{mp}")
    st, _, body = get(f"http://127.0.0.1:{mp}/metrics", timeout=10)
    assert st == 200
    exported = set(re.findall(r"^(drover_\w+)[{ ]", body.decode(), re.M))
    for n in names:
        assert n in exported, n
        assert f"seriesQuery: '{n}{{" in adapter, n
    # the demand target is max_workers x target_utilization, as the comment says
    demand = next(m for m in hpa["spec"]["metrics"] if m["pods"]["metric"]["name"] ==
                  "drover_pool_demand_workers")["pods"]["target"]["averageValue"]
    want = int(conf["max_workers"]) * float(conf["target_utilization"])
    assert abs(float(demand.rstrip("m")) / 1000 - want) < 1e-6, (demand, want)
    d.stop()


def test_status_json_is_a_readiness_probe(drover):
    mp = free_port()
    d = drover("so:" + HELLO_SO, "-w", "1", "--metrics-bind", f"127.0.0.1:{mp}",
               "--sample-interval", "0.1")
    url = f"http://127.0.0.1:{mp}/status.json"
    assert get(url)[0] == 200
    d.signal(signal.SIGWINCH)  # no workers: not ready
    wait_until(lambda: get(url)[0] == 503, 20, "503 with no worker")
    d.signal(signal.SIGTTIN)
    wait_until(lambda: get(url)[0] == 200, 20, "200 with a worker again")
