"""WebSockets (RFC 6455) on the asgi worker, with Debian's python3-websockets
as the client and a Starlette app: echo of text and binary messages,
fragmentation, ping/pong, subprotocols, close codes, refusal before accept
(403), the handshake checked, websocket_max_message (1009), and a graceful
stop closing open WebSockets with 1001."""
import asyncio
import base64
import os
import socket

import pytest

from conftest import status_of, wait_until

websockets = pytest.importorskip("websockets")
pytest.importorskip("starlette")

APPS = os.path.join(os.path.dirname(__file__), "apps")


@pytest.fixture
def wsd(drover, tmp_path):
    ev = str(tmp_path / "events")
    d = drover("asgi_ws_app:app", "-k", "asgi", "-w", "1", "--websocket-max-message", "64k",
               cwd=APPS, env={"ASGI_EVENTS": ev})
    d.events = ev
    d.ws = f"ws://127.0.0.1:{d.port}"
    return d


def events(d):
    try:
        with open(d.events) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_echo_fragments_ping_and_close(wsd):
    async def go():
        async with websockets.connect(wsd.ws + "/echo") as ws:
            await ws.send("héllo")
            assert await ws.recv() == "echo:héllo"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x02\x01\x00"
            await ws.send(["frag", "mented"])  # one message in three frames
            assert await ws.recv() == "echo:fragmented"
            big = os.urandom(60000)
            await ws.send(big)
            assert await ws.recv() == big[::-1]
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
        return ws.close_code
    assert run(go()) == 1000
    wait_until(lambda: "disconnect 1000" in events(wsd), 10, "the app saw the close")


def test_subprotocol_scope_and_server_close(wsd):
    async def go():
        async with websockets.connect(wsd.ws + "/sub?x=1", subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
            import json
            got = json.loads(await ws.recv())
            try:
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
            return got, ws.close_code
    got, code = run(go())
    assert got == {"subprotocols": ["a", "b"], "scheme": "ws", "path": "/sub", "query": "x=1"}
    assert code == 1000

    async def closer():
        async with websockets.connect(wsd.ws + "/close") as ws:
            try:
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
            return ws.close_code, ws.close_reason
    assert run(closer()) == (4001, "bye")


def test_refused_before_accept_is_403(wsd):
    async def go():
        try:
            async with websockets.connect(wsd.ws + "/deny"):
                return None
        except websockets.InvalidStatusCode as e:
            return e.status_code
    assert run(go()) == 403


def test_handshake_checked(wsd):
    key = base64.b64encode(os.urandom(16))
    base = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    ok = wsd.http(base + b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  timeout=2)
    assert status_of(ok) == 101
    assert status_of(wsd.http(base + b"Sec-WebSocket-Version: 13\r\n\r\n")) == 400  # no key
    bad_ver = wsd.http(base + b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 8\r\n\r\n")
    assert status_of(bad_ver) == 426


def test_message_too_large_is_1009(wsd):
    async def go():
        async with websockets.connect(wsd.ws + "/echo", max_size=None) as ws:
            await ws.send(b"x" * (70 * 1024))
            try:
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
            return ws.close_code
    assert run(go()) == 1009


def test_graceful_stop_closes_with_1001(wsd):
    async def go():
        async with websockets.connect(wsd.ws + "/echo") as ws:
            await ws.send("hi")
            assert await ws.recv() == "echo:hi"
            wsd.signal(15)
            try:
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
            return ws.close_code
    assert run(go()) == 1001
    assert wsd.wait_exit(15) == 0
    assert "disconnect 1001" in events(wsd)
