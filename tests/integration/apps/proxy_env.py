"""What the app sees of its client behind a proxy: scheme, HTTPS, REMOTE_ADDR
and the HTTP_* keys (tests/integration/test_gunicorn_proxy.py)."""
import json


def app(environ, start_response):
    body = json.dumps({
        "scheme": environ["wsgi.url_scheme"],
        "https": environ.get("HTTPS"),
        "remote_addr": environ["REMOTE_ADDR"],
        "remote_port": environ["REMOTE_PORT"],
        "http_keys": sorted(k for k in environ if k.startswith("HTTP_")),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
