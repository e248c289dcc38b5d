"""A tiny ASGI app for test_ops_break.py: 200 "ok", after ?sleep=MS."""
import asyncio


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    q = scope.get("query_string", b"").decode()
    if q.startswith("sleep="):
        await asyncio.sleep(int(q[6:]) / 1000)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
