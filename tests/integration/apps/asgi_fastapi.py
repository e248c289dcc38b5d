"""A FastAPI app for the asgi worker tests: typed path and query parameters,
a pydantic body, and a handler that blocks the loop (time.sleep) so the stall
watchdog names it."""
import asyncio
import time
from typing import Optional

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list = []


@app.get("/")
async def root():
    return {"hello": "fastapi"}


@app.get("/users/{user_id}")
async def user(user_id: int, verbose: bool = False, q: Optional[str] = None):
    return {"user_id": user_id, "verbose": verbose, "q": q}


@app.post("/items")
async def create(item: Item):
    return {"name": item.name, "total": item.price * 2, "tags": item.tags}


@app.get("/rates")
async def fetch_rates(ms: int = 300):
    time.sleep(ms / 1000)  # a blocking call in an async handler: the loop stalls
    return {"rates": "stale"}


@app.get("/nap")
async def nap(ms: int = 20):
    await asyncio.sleep(ms / 1000)
    return {"slept": ms}


@app.get("/boom")
async def boom():
    raise RuntimeError("boom in handler")
