"""Behind a proxy (issue 14): forwarded_allow_ips with gunicorn's
secure_scheme_headers, header names with '_' kept out of the environ, and the
PROXY protocol v1/v2 (a malformed or missing header: 400 and close)."""
import json
import socket
import struct

import pytest

from conftest import parse_json, status_of

GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"


def seen(srv, extra=b"", prefix=b""):
    resp = srv.http(prefix + GET + extra + b"\r\n")
    assert status_of(resp) == 200, resp
    return json.loads(resp.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("allow,trusted", [(None, True), ("10.0.0.1", False),
                                           ("*", True), ("127.0.0.0/8", True),
                                           ("10.0.0.0/8, ::1", False)])
def test_scheme_headers_only_from_trusted_peers(drover, allow, trusted):
    args = ["-k", "thread"] + (["--forwarded-allow-ips", allow] if allow else [])
    srv = drover("proxy_env:app", *args)
    for header in (b"X-Forwarded-Proto: https\r\n", b"X-Forwarded-Ssl: on\r\n",
                   b"X-Forwarded-Protocol: ssl\r\n"):
        env = seen(srv, header)
        if trusted:
            assert env["scheme"] == "https" and env["https"] == "on", env
        else:
            assert env["scheme"] == "http" and env["https"] is None, env
    assert seen(srv, b"X-Forwarded-Proto: http\r\n")["scheme"] == "http"


def test_underscore_header_names_are_dropped(drover):
    srv = drover("proxy_env:app", "--log-level", "debug")
    env = seen(srv, b"X_Forwarded_Proto: https\r\nX-Real-Ip: 1.2.3.4\r\n")
    assert env["scheme"] == "http"
    assert "HTTP_X_REAL_IP" in env["http_keys"]
    assert "HTTP_X_FORWARDED_PROTO" not in env["http_keys"]
    srv.wait_log(r"header 'X_Forwarded_Proto' dropped")


def v2(fam, addrs):
    body = addrs
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, fam]) + struct.pack("!H", len(body))
            + body)


V2_TCP4 = v2(0x11, socket.inet_pton(socket.AF_INET, "203.0.113.7")
             + socket.inet_pton(socket.AF_INET, "10.0.0.1") + struct.pack("!HH", 4242, 80))
V2_TCP6 = v2(0x21, socket.inet_pton(socket.AF_INET6, "2001:db8::5")
             + socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("!HH", 5151, 80))
V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + b"\x00\x00"


@pytest.mark.parametrize("model", ["sync", "thread", "event"])
def test_proxy_protocol_gives_the_client_address(drover, model):
    srv = drover("proxy_env:app", "-k", model, "--proxy-protocol", "--access-log", "-")
    env = seen(srv, prefix=b"PROXY TCP4 198.51.100.9 10.0.0.1 56324 80\r\n")
    assert (env["remote_addr"], env["remote_port"]) == ("198.51.100.9", "56324")
    env = seen(srv, prefix=b"PROXY TCP6 2001:db8::9 2001:db8::1 1234 80\r\n")
    assert env["remote_addr"] == "2001:db8::9"
    assert seen(srv, prefix=V2_TCP4)["remote_addr"] == "203.0.113.7"
    assert seen(srv, prefix=V2_TCP6)["remote_port"] == "5151"
    assert seen(srv, prefix=b"PROXY UNKNOWN\r\n")["remote_addr"] == "127.0.0.1"
    assert seen(srv, prefix=V2_LOCAL)["remote_addr"] == "127.0.0.1"
    assert "198.51.100.9" in srv.stdout()  # and in the access log


@pytest.mark.parametrize("prefix", [
    b"", b"PROXY TCP4 1.2.3.4\r\n", b"PROXY TCP4 1.2.3.999 10.0.0.1 1 80\r\n",
    b"PROXY TCP4 1.2.3.4 10.0.0.1 99999 80\r\n", b"PROXY SCTP 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY " + b"x" * 120 + b"\r\n",
    b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + b"\x00" * 12,  # version 3
    b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + b"\x00" * 4,  # too short for TCP4
], ids=["missing", "v1-short", "v1-bad-addr", "v1-bad-port", "v1-proto", "v1-long",
        "v2-version", "v2-short"])
def test_malformed_proxy_header_is_400_and_close(drover, prefix):
    srv = drover("proxy_env:app", "-k", "thread", "--proxy-protocol")
    resp = srv.http(prefix + GET + b"\r\n")
    assert status_of(resp) == 400, resp
    assert srv.alive()
    assert seen(srv, prefix=b"PROXY TCP4 198.51.100.9 10.0.0.1 1 80\r\n")["remote_addr"] \
        == "198.51.100.9"


def test_proxy_header_only_from_proxy_allow_ips(drover):
    srv = drover("proxy_env:app", "--proxy-protocol", "--proxy-allow-ips", "10.0.0.0/8")
    resp = srv.http(b"PROXY TCP4 198.51.100.9 10.0.0.1 1 80\r\n" + GET + b"\r\n")
    assert status_of(resp) == 400, resp
