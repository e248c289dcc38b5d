"""A Starlette app for the asgi worker tests (tests/integration/test_asgi.py).
ASGI_EVENTS names a file where lifespan, background and stream events are
appended, one line each, so a test can check their order."""
import asyncio
import json
import os

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

EVENTS = os.environ.get("ASGI_EVENTS", "")


def note(text):
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(f"{os.getpid()} {text}\n")


async def hello(request):
    return PlainTextResponse("hello from starlette\n")


async def item(request):
    return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q"),
                         "path": request.url.path})


async def upload(request):
    n = chunks = 0
    async for chunk in request.stream():
        n += len(chunk)
        chunks += bool(chunk)
    return JSONResponse({"size": n, "chunks": chunks})


async def ticks(request):
    n = int(request.query_params.get("n", "3"))
    delay = float(request.query_params.get("delay", "0.2"))

    async def gen():
        for i in range(n):
            yield f"tick {i}\n"
            await asyncio.sleep(delay)
    return StreamingResponse(gen(), media_type="text/plain")


async def forever(request):
    async def gen():
        i = 0
        try:
            while True:
                yield b"x" * 1024 + b"\n"
                i += 1
                await asyncio.sleep(0.01)
        finally:
            note(f"stream ended after {i}")
    return StreamingResponse(gen(), media_type="text/plain")


async def background(request):
    async def later(tag):
        await asyncio.sleep(0.05)
        note(f"background {tag}")
    return PlainTextResponse("queued\n", background=BackgroundTask(later, request.query_params["tag"]))


async def echo_json(request):
    return JSONResponse(await request.json())


async def startup():
    note("startup")


async def shutdown():
    note("shutdown")


app = Starlette(routes=[
    Route("/", hello),
    Route("/items/{id:int}", item),
    Route("/upload", upload, methods=["POST"]),
    Route("/ticks", ticks),
    Route("/forever", forever),
    Route("/background", background),
    Route("/echo", echo_json, methods=["POST"]),
], on_startup=[startup], on_shutdown=[shutdown])
