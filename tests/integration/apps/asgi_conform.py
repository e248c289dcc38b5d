"""A bare ASGI 3.0 app for tests/integration/test_asgi_conformance.py: it
answers with what it saw (the scope, the receive() events) as JSON, or
misbehaves on purpose.  ASGI_EVENTS names a file for what happens after the
response (http.disconnect)."""
import asyncio
import json
import os

EVENTS = os.environ.get("ASGI_EVENTS", "")


def note(text):
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(text + "\n")


def plain(v):
    if isinstance(v, bytes):
        return {"bytes": v.decode("latin-1")}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


async def lifespan(receive, send):
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_all(receive):
    events = []
    while True:
        m = await receive()
        events.append(m)
        if m["type"] != "http.request" or not m.get("more_body"):
            return events


async def respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if path.startswith("/scope"):
        events = await read_all(receive)
        types = {k: type(v).__name__ for k, v in scope.items()}
        out = {"scope": plain(scope), "types": types,
               "header_types": sorted({type(x).__name__ for h in scope["headers"] for x in h}),
               "events": plain(events)}
        return await respond(send, 200, json.dumps(out).encode())
    if path == "/after":
        # after the response is complete, receive() says http.disconnect at once
        await respond(send, 200, b"{}")
        m = await asyncio.wait_for(receive(), 5)
        note(f"after: {m['type']}")
        return
    if path == "/disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await read_all(receive)  # the (empty) request body
        m = await asyncio.wait_for(receive(), 10)
        note(f"disconnect: {m['type']}")
        return
    if path == "/headers":
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"),
                                (b"x-custom", b"yes"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cde"})
        return
    if path == "/empty204":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"dropped"})
        return
    if path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("after start")
    if path == "/no-response":
        return
    if path == "/interim-status":
        # a 1xx is interim (RFC 9110 section 15.2), never the final answer
        await send({"type": "http.response.start", "status": 103, "headers": []})
        return
    if path == "/bad-header":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-bad", b"a\r\nInjected: 1")]})
        return
    if path == "/echo":
        body = b"".join(m.get("body", b"") for m in await read_all(receive))
        return await respond(send, 200, body)
    await respond(send, 404, b"{}")
