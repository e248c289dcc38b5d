"""The app of contrib/bench/asgi.sh, the same for every server: "/" answers
"hello" at once, "/sleep" after a 20 ms await asyncio.sleep (an I/O-bound
handler: many requests in flight per worker)."""
import asyncio

HEAD = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"6")]}
BODY = {"type": "http.response.body", "body": b"hello\n"}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            kind = m["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["path"] == "/sleep":
        await asyncio.sleep(0.02)
    await send(HEAD)
    await send(BODY)
