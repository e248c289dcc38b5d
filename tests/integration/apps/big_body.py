"""Test app: the WSGI twin of bigbody.c.  Query: size=BYTES, piece=BYTES,
cl=0 to omit Content-Length.  Piece k is filled with 'a' + k % 26; the body
is a generator, so each piece is one block handed to the server."""
from urllib.parse import parse_qs


def app(environ, start_response):
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    size = int(q.get("size", 1 << 20))
    piece = int(q.get("piece", 64 << 10))
    got = 0
    inp = environ["wsgi.input"]
    while True:
        b = inp.read(16384)
        if not b:
            break
        got += len(b)
    headers = [("Content-Type", "application/octet-stream"), ("X-Body-Read", str(got))]
    if q.get("cl", "1") != "0":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)

    def gen():
        for k, off in enumerate(range(0, size, piece)):
            yield bytes([97 + k % 26]) * min(piece, size - off)
    return gen()
