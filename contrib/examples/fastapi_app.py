"""A FastAPI app for drover's asgi worker (README "ASGI apps"):

    drover -k asgi -w 2 --chdir contrib/examples fastapi_app:app

/rates calls time.sleep inside an async handler, the classic loop-blocking
bug: drover's stall watchdog names it (`stall ... at fetch_rates
(fastapi_app.py:NN) during GET /rates ...`); /rates-fixed does the same wait
on the loop's executor and stalls nothing."""
import asyncio
import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root():
    return {"hello": "from FastAPI on drover"}


@app.get("/items/{item_id}")
async def item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}


def slow_upstream():
    time.sleep(0.3)  # a synchronous client (requests, a DB driver) in disguise
    return {"EUR": 1.0, "USD": 1.08}


@app.get("/rates")
async def fetch_rates():
    return slow_upstream()  # blocks the event loop: every request on the worker waits


@app.get("/rates-fixed")
async def fetch_rates_fixed():
    return await asyncio.get_running_loop().run_in_executor(None, slow_upstream)
