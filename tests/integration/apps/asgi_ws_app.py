"""A Starlette WebSocket app for tests/integration/test_asgi_websocket.py:
/echo echoes text and bytes, /sub accepts the client's second subprotocol,
/deny closes before accepting (403), /close closes with 4001; ASGI_EVENTS
gets a line for each websocket.disconnect the app sees, with its code."""
import os

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

EVENTS = os.environ.get("ASGI_EVENTS", "")


def note(text):
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(text + "\n")


async def echo(ws):
    await ws.accept()
    try:
        while True:
            m = await ws.receive()
            if m["type"] == "websocket.disconnect":
                note(f"disconnect {m['code']}")
                return
            if m.get("text") is not None:
                await ws.send_text("echo:" + m["text"])
            else:
                await ws.send_bytes(m["bytes"][::-1])
    except WebSocketDisconnect as e:
        note(f"disconnect {e.code}")


async def sub(ws):
    await ws.accept(subprotocol=ws.scope["subprotocols"][-1])
    await ws.send_json({"subprotocols": ws.scope["subprotocols"], "scheme": ws.scope["scheme"],
                        "path": ws.scope["path"], "query": ws.scope["query_string"].decode()})
    await ws.close()


async def deny(ws):
    await ws.close(code=1008)


async def closer(ws):
    await ws.accept()
    await ws.close(code=4001, reason="bye")


app = Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/sub", sub),
                        WebSocketRoute("/deny", deny), WebSocketRoute("/close", closer)])
