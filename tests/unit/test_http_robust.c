/* Robustness of the request parser against hostile input: many seeded random
 * mutations of valid requests, fed in random splits, must never crash, never
 * consume more than given, never write past the body buffer, and always end
 * in a defined state.  Deterministic (fixed seed), so a failure reproduces;
 * run it under valgrind or ASan for memory errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workers/http/http_parse.h"

static const char *const seeds[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
	"GET http://h/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	/* xorshift64*: reproducible everywhere, unlike rand(). */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static size_t mutate(char *buf, size_t len, size_t cap)
{
	static const char interesting[] = "\r\n:; \t\0\x7f\xff-0123456789aAzZ/?%";
	unsigned n = 1 + rnd() % 6;
	for (unsigned i = 0; i < n; i++) {
		size_t at = len ? rnd() % len : 0;
		switch (rnd() % 4) {
		case 0: /* flip */
			if (len)
				buf[at] = (char)(rnd() & 0xff);
			break;
		case 1: /* interesting byte */
			if (len)
				buf[at] = interesting[rnd() % (sizeof(interesting) - 1)];
			break;
		case 2: /* delete */
			if (len) {
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
			}
			break;
		default: /* duplicate a run */
			if (len && len < cap / 2) {
				size_t run = 1 + rnd() % 16;
				if (run > len - at)
					run = len - at;
				memmove(buf + at + run, buf + at, len - at);
				len += run;
			}
		}
	}
	return len;
}

static unsigned n_done, n_error;

/* Feed data in random splits; checks the invariants at every step. */
static void feed(const char *data, size_t len)
{
	struct http_limits lim = {256, 128, 8, 1024};
	struct http_parse hp;
	http_parse_init(&hp, &lim);
	size_t off = 0;
	unsigned rounds = 0;
	while (off < len && rounds++ < 10000) {
		size_t piece = 1 + rnd() % 17;
		if (piece > len - off)
			piece = len - off;
		size_t used;
		if (hp.state == HTTP_PARSE_HEAD) {
			used = http_parse_head(&hp, data + off, piece);
		} else if (hp.state == HTTP_PARSE_BODY) {
			char out[8];
			size_t outcap = 1 + rnd() % sizeof(out), got = 0;
			used = http_parse_body(&hp, data + off, piece, out, outcap, &got);
			CHECK(got <= outcap);
		} else if (hp.state == HTTP_PARSE_DONE) {
			struct drover_request req;
			memset(&req, 0, sizeof(req));
			http_parse_request(&hp, &req);
			CHECK(req.nheaders <= lim.max_header_count);
			n_done++;
			http_parse_next(&hp);
			continue;
		} else {
			CHECK(hp.error_status >= 400 && hp.error_status < 600);
			n_error++;
			break;
		}
		CHECK(used <= piece);
		if (used == 0 && hp.state != HTTP_PARSE_ERROR && hp.state != HTTP_PARSE_DONE &&
		    hp.state != HTTP_PARSE_BODY)
			break; /* no progress possible without more bytes: fine */
		off += used;
	}
	http_parse_free(&hp);
}

static void test_mutations(void)
{
	char buf[4096];
	for (unsigned i = 0; i < 60000; i++) {
		const char *s = seeds[i % (sizeof(seeds) / sizeof(seeds[0]))];
		size_t len = strlen(s);
		memcpy(buf, s, len);
		len = mutate(buf, len, sizeof(buf));
		feed(buf, len);
	}
	/* The mutations must exercise both outcomes, or the test proves little. */
	printf("# mutations: %u requests completed, %u rejected\n", n_done, n_error);
	CHECK(n_done > 3000);
	CHECK(n_error > 10000);
}

static void test_random_bytes(void)
{
	char buf[512];
	for (unsigned i = 0; i < 20000; i++) {
		size_t len = rnd() % sizeof(buf);
		for (size_t j = 0; j < len; j++)
			buf[j] = (char)(rnd() & 0xff);
		feed(buf, len);
	}
}

static void test_huge_head_is_bounded(void)
{
	/* One endless header value: refused (431) long before it is buffered. */
	struct http_limits lim = {8190, 8190, 100, 1 << 20};
	struct http_parse hp;
	http_parse_init(&hp, &lim);
	const char *start = "GET / HTTP/1.1\r\nX: ";
	http_parse_head(&hp, start, strlen(start));
	char chunk[4096];
	memset(chunk, 'a', sizeof(chunk));
	for (int i = 0; i < 1000 && hp.state == HTTP_PARSE_HEAD; i++)
		http_parse_head(&hp, chunk, sizeof(chunk));
	CHECK(hp.state == HTTP_PARSE_ERROR);
	CHECK(hp.error_status == 431);
	CHECK(hp.arena_cap <= 2 * (8190 + 2 + 100 * (8190 + 2)));
	http_parse_free(&hp);
}

int main(void)
{
	RUN(test_mutations);
	RUN(test_random_bytes);
	RUN(test_huge_head_is_bounded);
	return check_summary();
}
