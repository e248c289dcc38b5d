/* HTTP/1.x request parsing on top of llhttp, with drover's limits.  Pure:
 * bytes in, a parsed request head and decoded body bytes out; no I/O, no
 * clock.  One struct http_parse per connection, reused across keep-alive
 * requests with http_parse_next(). */
#ifndef DROVER_HTTP_PARSE_H
#define DROVER_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <llhttp.h>

#include "workers/app/app.h"

struct http_limits {
	size_t max_request_line; /* method SP target SP version; longer: 414-ish -> we answer 400 */
	size_t max_header_size; /* one field, name + value; longer: 431 */
	unsigned max_header_count; /* longer: 431 */
	unsigned long long max_body; /* larger Content-Length or decoded chunked total: 413 */
};

enum http_parse_state {
	HTTP_PARSE_HEAD, /* reading the request head */
	HTTP_PARSE_BODY, /* head complete, body bytes to come */
	HTTP_PARSE_DONE, /* request complete (head, and body if any) */
	HTTP_PARSE_ERROR, /* see error_status / error_reason; close after answering */
};

struct http_parse {
	llhttp_t p;
	llhttp_settings_t settings;
	const struct http_limits *lim;
	enum http_parse_state state;
	int error_status; /* 400, 413, 431, 501 (unknown Transfer-Encoding), 505 */
	const char *error_reason; /* short text for the log */

	/* the head: method, target and header names/values live in arena */
	char *arena;
	size_t arena_len, arena_cap;
	struct drover_header *headers; /* pointers into arena, valid after the head */
	size_t nheaders, headers_cap;
	size_t line_len, field_len; /* running sizes, for the limits */
	/* internal offsets while parsing; see http_parse.c */
	size_t method_off, method_len, target_off, target_len;
	size_t cur_name_off, cur_name_len, cur_value_off, cur_value_len;
	int in_value;

	int http_major, http_minor;
	bool keep_alive; /* after this request, per the version and Connection */
	bool expect_continue; /* Expect: 100-continue was sent */
	bool chunked; /* Transfer-Encoding: chunked */
	bool upgrade;
	long long content_length; /* -1 when chunked, 0 when no body */
	unsigned long long body_read; /* decoded body bytes delivered so far */

	/* where http_parse_body() copies decoded bytes (set for each call) */
	char *out;
	size_t out_len, out_cap;
};

void http_parse_init(struct http_parse *hp, const struct http_limits *lim);
void http_parse_free(struct http_parse *hp);
/* Reset for the next request on the same connection (keeps buffers). */
void http_parse_next(struct http_parse *hp);

/* Parse the request head from data[0..len).  Returns the number of bytes
 * consumed; when the head is complete, state becomes HTTP_PARSE_BODY (a body
 * follows) or HTTP_PARSE_DONE (none) and the rest of data is left unconsumed
 * (body or pipelined requests).  On a protocol error or a limit, state becomes
 * HTTP_PARSE_ERROR with error_status set.  The request line limit and the
 * header limits are applied while bytes arrive, so a huge head is refused
 * before it is buffered whole. */
size_t http_parse_head(struct http_parse *hp, const char *data, size_t len);

/* Decode body bytes from data[0..len) into out[0..outcap).  Returns the raw
 * bytes consumed and sets *outlen to the decoded bytes written.  Never writes
 * more than outcap (it feeds llhttp at most outcap raw bytes at a time).  At
 * the end of the body state becomes HTTP_PARSE_DONE and the bytes after it
 * (a pipelined request) are left unconsumed.  Errors as above. */
size_t http_parse_body(struct http_parse *hp, const char *data, size_t len, char *out,
		       size_t outcap, size_t *outlen);

/* Fill the head fields of req (method, target, path, query, version, headers,
 * content_length) from a parsed head; pointers stay valid until
 * http_parse_next().  ops, peer and server fields are left to the caller. */
void http_parse_request(const struct http_parse *hp, struct drover_request *req);

/* Case-insensitive header lookup in a parsed head. */
const struct drover_header *http_find_header(const struct drover_header *h, size_t n,
					     const char *name);
#endif
