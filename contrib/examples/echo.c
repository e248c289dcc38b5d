/* A C app that answers with the request as JSON: method, target, path,
 * query, version, headers, peer and the body (streamed in, escaped).  With
 * "sleep=MS" in the query it first sleeps MS milliseconds, which makes it a
 * handy slow endpoint for trying drain, timeout and stall behaviour. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"

struct out {
	char *p;
	size_t len, cap;
	int oom;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n > o->cap) {
		size_t cap = (o->cap ? o->cap * 2 : 1024) + n;
		char *p = realloc(o->p, cap);
		if (!p) {
			o->oom = 1;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_s(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A JSON string; bytes outside printable ASCII become \u00XX. */
static void put_json(struct out *o, const char *s, size_t n)
{
	put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(o, esc, 6);
		} else {
			put(o, (const char *)&c, 1);
		}
	}
	put(o, "\"", 1);
}

static void put_field(struct out *o, const char *name, struct drover_str v)
{
	put_s(o, ", \"");
	put_s(o, name);
	put_s(o, "\": ");
	put_json(o, v.ptr, v.len);
}

static void maybe_sleep(struct drover_str q)
{
	const char *p = q.len ? memmem(q.ptr, q.len, "sleep=", 6) : NULL;
	if (!p)
		return;
	long ms = strtol(p + 6, NULL, 10);
	if (ms <= 0 || ms > 600000)
		return;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int read_body(struct drover_request *req, struct out *o)
{
	char buf[16384];
	struct out body = {0};
	ssize_t n;
	while ((n = drover_read_body(req, buf, sizeof(buf))) > 0)
		put(&body, buf, (size_t)n);
	put_s(o, ", \"body\": ");
	put_json(o, body.p ? body.p : "", body.len);
	free(body.p);
	return n < 0 ? -1 : 0;
}

/* Each write is sent at once (see app.h).  A small answer is announced with
 * its length and written whole; a large one shows the other way, a stream
 * of pieces without a length (drover sends it chunked). */
static int send_answer(struct drover_response *resp, const char *p, size_t len)
{
	enum { PIECE = 64 * 1024 };
	if (len <= PIECE) {
		char cl[24];
		snprintf(cl, sizeof(cl), "%zu", len);
		drover_header(resp, "Content-Length", cl);
		return drover_write(resp, p, len);
	}
	for (size_t off = 0; off < len; off += PIECE)
		if (drover_write(resp, p + off, len - off < PIECE ? len - off : PIECE) < 0)
			return -1;
	return 0;
}

static int echo_handle(struct drover_request *req, struct drover_response *resp)
{
	maybe_sleep(req->query);
	struct out o = {0};
	char ver[16];
	snprintf(ver, sizeof(ver), "HTTP/%d.%d", req->http_major, req->http_minor);
	put_s(&o, "{\"version\": \"");
	put_s(&o, ver);
	put_s(&o, "\"");
	put_field(&o, "method", req->method);
	put_field(&o, "target", req->target);
	put_field(&o, "path", req->path);
	put_field(&o, "query", req->query);
	put_field(&o, "peer", (struct drover_str){req->peer_addr, strlen(req->peer_addr)});
	put_s(&o, ", \"headers\": [");
	for (size_t i = 0; i < req->nheaders; i++) {
		put_s(&o, i ? ", [" : "[");
		put_json(&o, req->headers[i].name.ptr, req->headers[i].name.len);
		put_s(&o, ", ");
		put_json(&o, req->headers[i].value.ptr, req->headers[i].value.len);
		put_s(&o, "]");
	}
	put_s(&o, "]");
	int rc = read_body(req, &o);
	put_s(&o, "}\n");
	if (rc < 0 || o.oom) {
		free(o.p);
		return -1;
	}
	drover_header(resp, "Content-Type", "application/json");
	rc = send_answer(resp, o.p, o.len);
	free(o.p);
	return rc;
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "echo",
	.handle = echo_handle,
};
