"""A WSGI app that fragments pymalloc's arenas on purpose, the Python twin of
fragment.c.  GET /grow?n=N builds N small objects (floats, default 400000,
about 12 MB of 32-byte blocks), as a request parsing a big payload would,
keeps one in 256 in a bounded cache and drops the rest.  Each 16 KB pool keeps
a live block, so pymalloc can free no arena: RSS stays up while the blocks in
use (sys.getallocatedblocks()) stay flat -- memory malloc's counters never
see.  drover reads the arenas (README "Memory verdicts") and says
"fragmentation"; malloc_trim cannot help, a graceful recycle does.
    drover --rss-growth-limit 32M fragment:app     (from contrib/examples)"""
import collections
import os

CACHE = collections.deque(maxlen=int(os.environ.get("FRAG_CACHE_OBJS", "40000")))
OK = [("Content-Type", "text/plain"), ("Content-Length", "3")]


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/grow":
        n = 400000
        for kv in environ.get("QUERY_STRING", "").split("&"):
            if kv.startswith("n="):
                n = int(kv[2:])
        objs = [float(i) for i in range(n)]
        CACHE.extend(objs[::256])
        del objs
    start_response("200 OK", OK)
    return [b"ok\n"]


application = app
