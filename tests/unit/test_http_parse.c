/* Unit tests for workers/http/http_parse.c: request heads fed whole, in
 * pieces and byte by byte; pipelining; every limit at and one past its
 * boundary; Content-Length and chunked bodies; smuggling and version errors. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workers/http/http_parse.h"

static const struct http_limits lim_default = {
	.max_request_line = 8190,
	.max_header_size = 8190,
	.max_header_count = 100,
	.max_body = 1 << 20,
};

/* Feed data to http_parse_head in pieces of step bytes, as a connection
 * would; returns the bytes consumed when the head ended (or all of them). */
static size_t feed_head(struct http_parse *hp, const char *data, size_t len, size_t step)
{
	size_t off = 0;

	while (off < len && hp->state == HTTP_PARSE_HEAD) {
		size_t n = len - off < step ? len - off : step;
		size_t used = http_parse_head(hp, data + off, n);

		off += used;
		if (used < n)
			break;
	}
	return off;
}

/* Decode a body with raw pieces of step bytes and an output of outcap. */
static size_t feed_body(struct http_parse *hp, const char *data, size_t len, size_t step,
			size_t outcap, char *body, size_t *body_len)
{
	char out[64];
	size_t off = 0;

	*body_len = 0;
	while (off < len && hp->state == HTTP_PARSE_BODY) {
		size_t n = len - off < step ? len - off : step, got = 0;
		size_t used = http_parse_body(hp, data + off, n, out, outcap, &got);

		CHECK(got <= outcap);
		memcpy(body + *body_len, out, got);
		*body_len += got;
		off += used;
		if (used == 0 && got == 0)
			break;
	}
	return off;
}

static bool str_is(struct drover_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* RFC 9112 2.2: an empty line before the request line is ignored. */
static void test_leading_crlf(void)
{
	static const char req[] = "\r\nGET / HTTP/1.1\r\n\r\n";
	struct http_parse hp;

	http_parse_init(&hp, &lim_default);
	CHECK(feed_head(&hp, req, sizeof(req) - 1, 1) == sizeof(req) - 1);
	CHECK(hp.state == HTTP_PARSE_DONE && hp.method_len == 3);
	http_parse_free(&hp);
}

static void test_simple_get(void)
{
	static const char req[] = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\n"
				  "User-Agent:   curl/8  \r\nAccept: */*\r\n\r\n";
	struct http_parse hp;
	struct drover_request r;

	http_parse_init(&hp, &lim_default);
	CHECK(http_parse_head(&hp, req, sizeof(req) - 1) == sizeof(req) - 1);
	CHECK(hp.state == HTTP_PARSE_DONE);
	http_parse_request(&hp, &r);
	CHECK(str_is(r.method, "GET"));
	CHECK(str_is(r.target, "/a/b?x=1&y=2"));
	CHECK(str_is(r.path, "/a/b"));
	CHECK(str_is(r.query, "x=1&y=2"));
	CHECK(r.http_major == 1 && r.http_minor == 1);
	CHECK(r.nheaders == 3);
	CHECK(str_is(r.headers[0].name, "Host") && str_is(r.headers[0].value, "example.com"));
	CHECK(str_is(r.headers[1].value, "curl/8"));
	CHECK(r.headers[1].value.ptr[r.headers[1].value.len] == '\0');
	CHECK(r.content_length == 0);
	CHECK(hp.keep_alive && !hp.chunked && !hp.expect_continue && !hp.upgrade);
	http_parse_free(&hp);
}

/* Many headers, fed one byte at a time: every callback is split and the
 * arena is reallocated several times before the pointers are fixed up. */
static void test_split_one_byte(void)
{
	char req[4096];
	size_t len = 0;
	struct http_parse hp;
	struct drover_request r;

	len += (size_t)sprintf(req + len, "POST /upload?k=v HTTP/1.1\r\n");
	for (int i = 0; i < 40; i++)
		len += (size_t)sprintf(req + len, "X-Header-%02d: \t value number %d \t\r\n", i, i);
	len += (size_t)sprintf(req + len, "Content-Length: 3\r\n\r\nabc");
	http_parse_init(&hp, &lim_default);
	CHECK(feed_head(&hp, req, len, 1) == len - 3);
	CHECK(hp.state == HTTP_PARSE_BODY);
	CHECK(hp.arena_cap > 512); /* it did grow */
	http_parse_request(&hp, &r);
	CHECK(str_is(r.method, "POST") && str_is(r.path, "/upload") && str_is(r.query, "k=v"));
	CHECK(r.nheaders == 41);
	for (int i = 0; i < 40; i++) {
		char name[32], value[32];

		sprintf(name, "X-Header-%02d", i);
		sprintf(value, "value number %d", i);
		CHECK(str_is(r.headers[i].name, name));
		CHECK(str_is(r.headers[i].value, value));
	}
	CHECK(r.content_length == 3);
	http_parse_free(&hp);
}

static void test_pipelined(void)
{
	static const char buf[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
				  "POST /two HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
				  "GET /three HTTP/1.1\r\n\r\n";
	size_t len = sizeof(buf) - 1, off = 0, used, got;
	struct http_parse hp;
	struct drover_request r;
	char out[16];

	http_parse_init(&hp, &lim_default);
	used = http_parse_head(&hp, buf, len);
	CHECK(used == strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
	CHECK(hp.state == HTTP_PARSE_DONE);
	http_parse_request(&hp, &r);
	CHECK(str_is(r.path, "/one"));
	off += used;

	http_parse_next(&hp);
	used = http_parse_head(&hp, buf + off, len - off);
	CHECK(used == strlen("POST /two HTTP/1.1\r\nContent-Length: 5\r\n\r\n"));
	CHECK(hp.state == HTTP_PARSE_BODY);
	http_parse_request(&hp, &r);
	CHECK(str_is(r.path, "/two") && r.content_length == 5);
	off += used;
	used = http_parse_body(&hp, buf + off, len - off, out, sizeof(out), &got);
	CHECK(used == 5 && got == 5 && memcmp(out, "hello", 5) == 0);
	CHECK(hp.state == HTTP_PARSE_DONE);
	off += used;

	http_parse_next(&hp);
	used = http_parse_head(&hp, buf + off, len - off);
	CHECK(off + used == len && hp.state == HTTP_PARSE_DONE);
	http_parse_request(&hp, &r);
	CHECK(str_is(r.path, "/three") && r.nheaders == 0);
	http_parse_free(&hp);
}

struct limit_case {
	const char *name;
	struct http_limits lim;
	const char *req;
	int status; /* 0: accepted */
};

/* "GET /aaaa HTTP/1.1" is 18 bytes; "X-A: bbbb" is a 3+4 byte field. */
static const struct limit_case limit_cases[] = {
	{ "line at limit", { 18, 100, 10, 100 }, "GET /aaaa HTTP/1.1\r\n\r\n", 0 },
	{ "line one past", { 17, 100, 10, 100 }, "GET /aaaa HTTP/1.1\r\n\r\n", 400 },
	{ "field at limit", { 100, 7, 10, 100 }, "GET / HTTP/1.1\r\nX-A: bbbb\r\n\r\n", 0 },
	{ "field one past", { 100, 6, 10, 100 }, "GET / HTTP/1.1\r\nX-A: bbbb\r\n\r\n", 431 },
	{ "name alone past", { 100, 6, 10, 100 }, "GET / HTTP/1.1\r\nX-Abcde: b\r\n\r\n", 431 },
	{ "count at limit", { 100, 100, 2, 100 }, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", 0 },
	{ "count one past", { 100, 100, 2, 100 }, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
	  431 },
	{ "length at max_body", { 100, 100, 10, 10 },
	  "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 0 },
	{ "length one past", { 100, 100, 10, 10 },
	  "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413 },
};

static void test_limits(void)
{
	for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
		const struct limit_case *c = &limit_cases[i];
		size_t len = strlen(c->req);

		for (size_t step = 1; step <= len; step = step == 1 ? len : len + 1) {
			struct http_parse hp;

			http_parse_init(&hp, &c->lim);
			feed_head(&hp, c->req, len, step);
			if (c->status ? hp.state != HTTP_PARSE_ERROR || hp.error_status != c->status
				      : hp.state == HTTP_PARSE_ERROR)
				printf("#   case '%s' step %zu: state %d status %d\n", c->name, step,
				       hp.state, hp.error_status);
			CHECK(c->status ? hp.error_status == c->status : hp.error_status == 0);
			http_parse_free(&hp);
		}
	}
}

/* A huge target is refused while it streams, long before it is whole. */
static void test_line_limit_streaming(void)
{
	struct http_limits lim = { 64, 100, 10, 100 };
	struct http_parse hp;
	char chunk[32];
	size_t fed = 0;

	memset(chunk, 'a', sizeof(chunk));
	http_parse_init(&hp, &lim);
	http_parse_head(&hp, "GET /", 5);
	while (hp.state == HTTP_PARSE_HEAD && fed < 100000)
		fed += http_parse_head(&hp, chunk, sizeof(chunk));
	CHECK(hp.state == HTTP_PARSE_ERROR && hp.error_status == 400);
	CHECK(strcmp(hp.error_reason, "request line too long") == 0);
	CHECK(fed < 128);
	CHECK(hp.arena_len <= 80);
	http_parse_free(&hp);
}

static void test_content_length_body(void)
{
	static const char req[] = "PUT /x HTTP/1.1\r\nContent-Length: 26\r\n\r\n"
				  "abcdefghijklmnopqrstuvwxyzGET";
	struct http_parse hp;
	char body[64];
	size_t head, used, blen;

	http_parse_init(&hp, &lim_default);
	head = http_parse_head(&hp, req, sizeof(req) - 1);
	CHECK(hp.state == HTTP_PARSE_BODY && hp.content_length == 26);
	used = feed_body(&hp, req + head, sizeof(req) - 1 - head, 7, 4, body, &blen);
	CHECK(hp.state == HTTP_PARSE_DONE);
	CHECK(used == 26 && blen == 26 && memcmp(body, "abcdefghijklmnopqrstuvwxyz", 26) == 0);
	CHECK(hp.body_read == 26);
	http_parse_free(&hp);
}

static const char chunked_req[] =
	"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	"5;ext;name=\"q;x\"\r\nhello\r\n"
	"1\r\n,\r\n"
	"A\r\n world!!! \r\n"
	"0\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n"
	"GET /next HTTP/1.1\r\n\r\n";

/* Byte-by-byte with a 3-byte output: extensions and trailers are skipped,
 * trailers stay out of the head, the next request stays unconsumed. */
static void test_chunked_body(void)
{
	static const size_t steps[] = { 1, 2, 5, 1000 };
	static const size_t caps[] = { 1, 3, 64 };

	for (size_t s = 0; s < 4; s++)
		for (size_t c = 0; c < 3; c++) {
			struct http_parse hp;
			struct drover_request r;
			size_t len = sizeof(chunked_req) - 1, head, used, blen;
			char body[64];

			http_parse_init(&hp, &lim_default);
			head = feed_head(&hp, chunked_req, len, steps[s]);
			CHECK(hp.state == HTTP_PARSE_BODY && hp.chunked && hp.content_length == -1);
			used = feed_body(&hp, chunked_req + head, len - head, steps[s], caps[c],
					 body, &blen);
			CHECK(hp.state == HTTP_PARSE_DONE);
			CHECK(blen == 16 && memcmp(body, "hello, world!!! ", 16) == 0);
			CHECK(strcmp(chunked_req + head + used, "GET /next HTTP/1.1\r\n\r\n") == 0);
			http_parse_request(&hp, &r);
			CHECK(r.nheaders == 2 && str_is(r.headers[1].value, "chunked"));
			CHECK(r.content_length == -1);
			http_parse_free(&hp);
		}
}

static void test_chunked_limits(void)
{
	static const char over[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "6\r\nabcdef\r\n5\r\n";
	static const char at[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n";
	struct http_limits lim = { 100, 100, 10, 10 };
	struct http_parse hp;
	char body[64];
	size_t head, blen;

	http_parse_init(&hp, &lim);
	head = http_parse_head(&hp, at, sizeof(at) - 1);
	feed_body(&hp, at + head, sizeof(at) - 1 - head, 1, 8, body, &blen);
	CHECK(hp.state == HTTP_PARSE_DONE && blen == 10);
	http_parse_next(&hp);
	head = http_parse_head(&hp, over, sizeof(over) - 1);
	/* refused at the size line of the chunk, before its bytes */
	feed_body(&hp, over + head, sizeof(over) - 1 - head, 1000, 64, body, &blen);
	CHECK(hp.state == HTTP_PARSE_ERROR && hp.error_status == 413);
	CHECK(!hp.keep_alive);
	http_parse_free(&hp);
}

static void test_chunked_garbage(void)
{
	static const char *bodies[] = {
		"zz\r\nab\r\n0\r\n\r\n", /* size not hex */
		"2\r\nabXX0\r\n\r\n", /* no CRLF after the data: llhttp's loose */
		"2\r\nab\r\r0\r\n\r\n", /* mode skips those two bytes unread */
		"2\r\nab\n\r0\r\n\r\n",
		"2\r\nabc\r\n0\r\n\r\n", /* more data than the size */
		"2 x\r\nab\r\n0\r\n\r\n", /* junk after the size */
		"2;a=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n",
	};
	static const char head[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct http_limits lim = { 100, 40, 10, 1000 };

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		for (size_t step = 1; step <= 1000; step *= 1000) {
			struct http_parse hp;
			char body[64];
			size_t blen;

			http_parse_init(&hp, &lim);
			CHECK(http_parse_head(&hp, head, sizeof(head) - 1) == sizeof(head) - 1);
			feed_body(&hp, bodies[i], strlen(bodies[i]), step, 64, body, &blen);
			if (hp.error_status != 400)
				printf("#   body %zu step %zu: state %d status %d\n", i, step,
				       hp.state, hp.error_status);
			CHECK(hp.state == HTTP_PARSE_ERROR && hp.error_status == 400);
			http_parse_free(&hp);
		}
}

struct error_case {
	const char *req;
	int status;
};

static const struct error_case error_cases[] = {
	{ "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nX-A: a\x01\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\n: empty\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nX-A: a\r\n\rZ", 400 }, /* loose llhttp ends the head */
	{ "POST / HTTP/1.1\r\nContent-Length: 1\r\n\rXa", 400 },
	{ "GET / HTTP/1.1\r\nX-A: a\r\n\n", 400 },
	{ "GET / HTTP/1.1\r\nX-A:\rX-B: b\r\n\r\n", 400 },
	{ "\nGET / HTTP/1.1\r\n\r\n", 400 },
	{ "GET / HTTP/1.2\r\n\r\n", 505 },
	{ "GET / HTTP/2.0\r\n\r\n", 505 },
	{ "GET / HTTP/3.0\r\n\r\n", 505 },
	{ "GET / HTTP/0.9\r\n\r\n", 505 },
	{ "GET /\r\n\r\n", 505 },
	{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505 },
	{ "GET / HTTP/1.10\r\n\r\n", 400 },
	{ "GET / HTTP/01.1\r\n\r\n", 400 },
	{ "GET / http/1.1\r\n\r\n", 400 },
	{ "GET /a b HTTP/1.1\r\n\r\n", 400 },
	{ "FOO / HTTP/1.1\r\n\r\n", 400 },
	{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400 }, /* a TLS hello */
	{ "hello world\r\n\r\n", 400 },
};

static void test_errors(void)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		size_t len = strlen(c->req);

		for (size_t step = 1; step <= len; step = step == 1 ? len : len + 1) {
			struct http_parse hp;

			http_parse_init(&hp, &lim_default);
			feed_head(&hp, c->req, len, step);
			if (hp.error_status != c->status)
				printf("#   case %zu step %zu: got %d (%s), want %d\n", i, step,
				       hp.error_status, hp.error_reason ? hp.error_reason : "",
				       c->status);
			CHECK(hp.state == HTTP_PARSE_ERROR && hp.error_status == c->status);
			CHECK(hp.error_reason != NULL && !hp.keep_alive);
			/* an errored parser stays put */
			CHECK(http_parse_head(&hp, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
			http_parse_free(&hp);
		}
	}
}

/* An obs-fold whose CRLF and SP arrive in different reads. */
static void test_fold_across_reads(void)
{
	struct http_parse hp;

	http_parse_init(&hp, &lim_default);
	http_parse_head(&hp, "GET / HTTP/1.1\r\nX-A: a\r\n", 24);
	CHECK(hp.state == HTTP_PARSE_HEAD);
	http_parse_head(&hp, " b\r\n\r\n", 6);
	CHECK(hp.state == HTTP_PARSE_ERROR && hp.error_status == 400);
	http_parse_free(&hp);
}

struct target_case {
	const char *target, *path, *query;
};

static const struct target_case target_cases[] = {
	{ "/", "/", "" },
	{ "/a/b", "/a/b", "" },
	{ "/a?", "/a", "" },
	{ "/a?x=1?y", "/a", "x=1?y" },
	{ "/p%20q?a=%20", "/p%20q", "a=%20" },
	{ "http://example.com/p?q=1", "/p", "q=1" },
	{ "HTTPS://example.com:8443/deep/er", "/deep/er", "" },
	{ "http://example.com", "/", "" },
	{ "http://example.com?x", "/", "x" },
	{ "*", "*", "" },
};

static void test_targets(void)
{
	for (size_t i = 0; i < sizeof(target_cases) / sizeof(target_cases[0]); i++) {
		const struct target_case *c = &target_cases[i];
		char req[256];
		struct http_parse hp;
		struct drover_request r;
		int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\n\r\n",
				 c->target[0] == '*' ? "OPTIONS" : "GET", c->target);

		http_parse_init(&hp, &lim_default);
		http_parse_head(&hp, req, (size_t)n);
		CHECK(hp.state == HTTP_PARSE_DONE);
		http_parse_request(&hp, &r);
		CHECK(str_is(r.target, c->target));
		if (!str_is(r.path, c->path) || !str_is(r.query, c->query))
			printf("#   target '%s': path '%.*s' query '%.*s'\n", c->target,
			       (int)r.path.len, r.path.ptr, (int)r.query.len, r.query.ptr);
		CHECK(str_is(r.path, c->path) && str_is(r.query, c->query));
		http_parse_free(&hp);
	}
}

struct flag_case {
	const char *req;
	bool keep_alive, expect;
};

static const struct flag_case flag_cases[] = {
	{ "GET / HTTP/1.0\r\n\r\n", false, false },
	{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false },
	{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true, false },
	{ "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false, false },
	{ "GET / HTTP/1.1\r\n\r\n", true, false },
	{ "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false, false },
	{ "GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", false, false },
	{ "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true, false },
	{ "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", true, true },
	{ "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", true, true },
	{ "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", false, false },
	{ "POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\n", true, false },
};

static void test_keep_alive_expect(void)
{
	for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
		const struct flag_case *c = &flag_cases[i];
		struct http_parse hp;

		http_parse_init(&hp, &lim_default);
		http_parse_head(&hp, c->req, strlen(c->req));
		CHECK(hp.state == HTTP_PARSE_DONE || hp.state == HTTP_PARSE_BODY);
		if (hp.keep_alive != c->keep_alive || hp.expect_continue != c->expect)
			printf("#   flag case %zu: keep_alive %d expect %d\n", i, hp.keep_alive,
			       hp.expect_continue);
		CHECK(hp.keep_alive == c->keep_alive && hp.expect_continue == c->expect);
		http_parse_free(&hp);
	}
}

static void test_upgrade(void)
{
	static const char ws[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n\r\n\x81\x05hello";
	static const char conn[] = "CONNECT example.com:443 HTTP/1.1\r\n\r\n";
	struct http_parse hp;
	size_t used;

	http_parse_init(&hp, &lim_default);
	used = http_parse_head(&hp, ws, sizeof(ws) - 1);
	CHECK(hp.state == HTTP_PARSE_DONE && hp.upgrade && hp.content_length == 0);
	CHECK(used == sizeof(ws) - 1 - 7); /* the frame is left to the caller */
	http_parse_next(&hp);
	CHECK(http_parse_head(&hp, conn, sizeof(conn) - 1) == sizeof(conn) - 1);
	CHECK(hp.state == HTTP_PARSE_DONE && hp.upgrade);
	http_parse_next(&hp);
	CHECK(http_parse_head(&hp, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
	CHECK(hp.state == HTTP_PARSE_DONE && !hp.upgrade);
	http_parse_free(&hp);
}

static void test_find_header(void)
{
	static const char req[] = "GET / HTTP/1.1\r\nX-Dup: first\r\nContent-Type: a/b\r\n"
				  "x-dup: second\r\n\r\n";
	struct http_parse hp;
	const struct drover_header *h;

	http_parse_init(&hp, &lim_default);
	http_parse_head(&hp, req, sizeof(req) - 1);
	h = http_find_header(hp.headers, hp.nheaders, "content-type");
	CHECK(h && str_is(h->value, "a/b"));
	h = http_find_header(hp.headers, hp.nheaders, "X-DUP");
	CHECK(h && str_is(h->value, "first"));
	CHECK(http_find_header(hp.headers, hp.nheaders, "Content") == NULL);
	CHECK(http_find_header(hp.headers, hp.nheaders, "content-type-x") == NULL);
	http_parse_free(&hp);
}

/* A keep-alive connection reuses the parser: no state leaks across. */
static void test_reuse_after_next(void)
{
	static const char a[] = "POST /a HTTP/1.1\r\nExpect: 100-continue\r\n"
				"Transfer-Encoding: chunked\r\n\r\n";
	static const char b[] = "GET /b HTTP/1.0\r\n\r\n";
	struct http_parse hp;
	struct drover_request r;

	http_parse_init(&hp, &lim_default);
	http_parse_head(&hp, a, sizeof(a) - 1);
	CHECK(hp.chunked && hp.expect_continue && hp.nheaders == 2);
	http_parse_next(&hp);
	CHECK(http_parse_head(&hp, b, sizeof(b) - 1) == sizeof(b) - 1);
	http_parse_request(&hp, &r);
	CHECK(!hp.chunked && !hp.expect_continue && hp.nheaders == 0 && !hp.keep_alive);
	CHECK(str_is(r.method, "GET") && str_is(r.path, "/b") && r.http_minor == 0);
	CHECK(r.content_length == 0 && hp.body_read == 0);
	http_parse_free(&hp);
}

static void test_trailer_limit(void)
{
	static const char req[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	struct http_limits lim = { 100, 100, 2, 100 };
	struct http_parse hp;
	char body[8];
	size_t head, blen;

	http_parse_init(&hp, &lim);
	head = http_parse_head(&hp, req, sizeof(req) - 1);
	CHECK(hp.state == HTTP_PARSE_BODY);
	feed_body(&hp, req + head, sizeof(req) - 1 - head, 1000, 8, body, &blen);
	CHECK(hp.state == HTTP_PARSE_ERROR && hp.error_status == 431);
	http_parse_free(&hp);
}

int main(void)
{
	RUN(test_simple_get);
	RUN(test_leading_crlf);
	RUN(test_split_one_byte);
	RUN(test_pipelined);
	RUN(test_limits);
	RUN(test_line_limit_streaming);
	RUN(test_content_length_body);
	RUN(test_chunked_body);
	RUN(test_chunked_limits);
	RUN(test_chunked_garbage);
	RUN(test_errors);
	RUN(test_fold_across_reads);
	RUN(test_targets);
	RUN(test_keep_alive_expect);
	RUN(test_upgrade);
	RUN(test_find_header);
	RUN(test_reuse_after_next);
	RUN(test_trailer_limit);
	return check_summary();
}
