/* Unit tests for workers/http/http_response.c: exact bytes of response heads
 * (the Date line checked by shape), framing per HTTP version and keep-alive,
 * HEAD, 204/304/1xx, chunked bodies, length mismatches, header validation,
 * error responses and the buffer helpers. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "workers/http/http_response.h"

/* "Sun, 06 Nov 1994 08:49:37 GMT": A = letter, 9 = digit, others literal. */
static bool date_shape_ok(const char *d)
{
	static const char shape[] = "Aaa, 99 Aaa 9999 99:99:99 GMT";

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		char c = d[i], s = shape[i];

		if (s == 'A' && !(c >= 'A' && c <= 'Z'))
			return false;
		if (s == 'a' && !(c >= 'a' && c <= 'z'))
			return false;
		if (s == '9' && !(c >= '0' && c <= '9'))
			return false;
		if (s != 'A' && s != 'a' && s != '9' && c != s)
			return false;
	}
	return true;
}

/* The response as a string with its one Date line checked and replaced by
 * "Date: D", so the rest can be compared byte for byte. */
static char *undated(const struct http_buf *b)
{
	char *s = malloc(b->len + 1), *d;

	memcpy(s, b->data, b->len);
	s[b->len] = '\0';
	d = strstr(s, "\r\nDate: ");
	if (!d)
		return s;
	d += 8;
	if (!date_shape_ok(d) || strncmp(d + 29, "\r\n", 2) != 0) {
		printf("#   bad Date line: %.40s\n", d);
		check_failed_ = 1;
		return s;
	}
	d[0] = 'D';
	memmove(d + 1, d + 29, strlen(d + 29) + 1);
	CHECK(strstr(d, "\r\nDate: ") == NULL); /* only one */
	return s;
}

#define CHECK_UNDATED(buf, want)                                                     \
	do {                                                                         \
		char *u_ = undated(buf);                                             \
		CHECK_STR(u_, want);                                                 \
		free(u_);                                                            \
	} while (0)

static void test_simple_known_length(void)
{
	struct http_response r;
	struct http_buf out = { 0 };

	http_response_init(&r, false, true);
	CHECK(http_response_add_header(&r, "Content-Type", "text/plain") == 0);
	CHECK(http_response_head(&r, &out, 1, 5) == 0);
	CHECK(http_response_body(&r, &out, "hello", 5) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 200 OK\r\nDate: D\r\nServer: drover\r\n"
			    "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello");
	CHECK(r.keep_alive && r.has_length && !r.chunked && !r.close_delimited);
	http_response_free(&r);
	http_buf_free(&out);
}

struct framing_case {
	const char *name;
	int http_minor;
	bool keep_alive_in;
	const char *app_length; /* Content-Length from the app, or NULL */
	long long known;
	const char *want_head; /* after the Server line */
	bool keep_alive, chunked, close_delimited;
};

static const struct framing_case framing_cases[] = {
	{ "1.1 app length", 1, true, "3", -1, "Content-Length: 3\r\n\r\n", true, false, false },
	{ "1.1 known length", 1, true, NULL, 3, "Content-Length: 3\r\n\r\n", true, false, false },
	{ "1.1 unknown: chunked", 1, true, NULL, -1, "Transfer-Encoding: chunked\r\n\r\n", true,
	  true, false },
	{ "1.1 close", 1, false, NULL, 3, "Connection: close\r\nContent-Length: 3\r\n\r\n", false,
	  false, false },
	{ "1.1 close chunked", 1, false, NULL, -1,
	  "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n", false, true, false },
	{ "1.0 keep-alive length", 0, true, "3", -1,
	  "Connection: keep-alive\r\nContent-Length: 3\r\n\r\n", true, false, false },
	{ "1.0 keep-alive known", 0, true, NULL, 0,
	  "Connection: keep-alive\r\nContent-Length: 0\r\n\r\n", true, false, false },
	{ "1.0 no keep-alive", 0, false, NULL, 3, "Connection: close\r\nContent-Length: 3\r\n\r\n",
	  false, false, false },
	{ "1.0 unknown: close-delimited", 0, true, NULL, -1, "Connection: close\r\n\r\n", false,
	  false, true },
};

static void test_framing(void)
{
	for (size_t i = 0; i < sizeof(framing_cases) / sizeof(framing_cases[0]); i++) {
		const struct framing_case *c = &framing_cases[i];
		struct http_response r;
		struct http_buf out = { 0 };
		char want[256];

		http_response_init(&r, false, c->keep_alive_in);
		if (c->app_length)
			CHECK(http_response_add_header(&r, "Content-Length", c->app_length) == 0);
		CHECK(http_response_head(&r, &out, c->http_minor, c->known) == 0);
		snprintf(want, sizeof(want), "HTTP/1.1 200 OK\r\nDate: D\r\nServer: drover\r\n%s",
			 c->want_head);
		CHECK_UNDATED(&out, want);
		if (r.keep_alive != c->keep_alive || r.chunked != c->chunked ||
		    r.close_delimited != c->close_delimited)
			printf("#   case '%s': keep_alive %d chunked %d close_delimited %d\n",
			       c->name, r.keep_alive, r.chunked, r.close_delimited);
		CHECK(r.keep_alive == c->keep_alive && r.chunked == c->chunked);
		CHECK(r.close_delimited == c->close_delimited);
		http_response_free(&r);
		http_buf_free(&out);
	}
}

static void test_chunked_body(void)
{
	struct http_response r;
	struct http_buf out = { 0 };
	char big[4096];
	size_t head_len;

	memset(big, 'x', sizeof(big));
	http_response_init(&r, false, true);
	CHECK(http_response_head(&r, &out, 1, -1) == 0);
	head_len = out.len;
	CHECK(http_response_body(&r, &out, "hello", 5) == 0);
	CHECK(http_response_body(&r, &out, "", 0) == 0); /* no terminating chunk */
	CHECK(out.len == head_len + 10);
	CHECK(http_response_body(&r, &out, big, sizeof(big)) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK(memcmp(out.data + head_len, "5\r\nhello\r\n1000\r\nxxxx", 20) == 0);
	CHECK(out.len == head_len + 10 + 6 + 4096 + 2 + 5);
	CHECK(memcmp(out.data + out.len - 7, "\r\n0\r\n\r\n", 7) == 0);
	CHECK(r.body_sent == 4101);
	http_response_free(&r);
	http_buf_free(&out);
}

static void test_close_delimited_body(void)
{
	struct http_response r;
	struct http_buf out = { 0 };
	size_t head_len;

	http_response_init(&r, false, true);
	CHECK(http_response_head(&r, &out, 0, -1) == 0);
	head_len = out.len;
	CHECK(http_response_body(&r, &out, "raw bytes", 9) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK(out.len == head_len + 9 && memcmp(out.data + head_len, "raw bytes", 9) == 0);
	CHECK(!r.keep_alive);
	http_response_free(&r);
	http_buf_free(&out);
}

/* HEAD: the head a GET would get, no body bytes, no length check at end. */
static void test_head_request(void)
{
	struct http_response r;
	struct http_buf out = { 0 };
	size_t head_len;

	http_response_init(&r, true, true);
	CHECK(http_response_add_header(&r, "Content-Length", "1234") == 0);
	CHECK(http_response_head(&r, &out, 1, -1) == 0);
	head_len = out.len;
	CHECK(http_response_body(&r, &out, "abc", 3) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK(out.len == head_len);
	CHECK_UNDATED(&out, "HTTP/1.1 200 OK\r\nDate: D\r\nServer: drover\r\n"
			    "Content-Length: 1234\r\n\r\n");
	http_response_free(&r);
	http_buf_free(&out);

	http_response_init(&r, true, true);
	out = (struct http_buf){ 0 };
	CHECK(http_response_head(&r, &out, 1, 42) == 0);
	CHECK(http_response_body(&r, &out, "0123456789", 10) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 200 OK\r\nDate: D\r\nServer: drover\r\n"
			    "Content-Length: 42\r\n\r\n");
	http_response_free(&r);
	http_buf_free(&out);

	/* unknown length: chunked announced as for GET, but nothing framed */
	http_response_init(&r, true, true);
	out = (struct http_buf){ 0 };
	CHECK(http_response_head(&r, &out, 1, -1) == 0);
	head_len = out.len;
	CHECK(http_response_body(&r, &out, "abc", 3) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK(out.len == head_len && r.keep_alive);
	CHECK_UNDATED(&out, "HTTP/1.1 200 OK\r\nDate: D\r\nServer: drover\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n");
	http_response_free(&r);
	http_buf_free(&out);
}

/* RFC 9112 §6.3: 1xx, 204 and 304 end at the header section whatever the
 * app writes; 1xx and 204 lose the app's Content-Length (RFC 9110 §8.6), a
 * 304 keeps it (it is the 200's, §15.4.5).  Nothing is chunked or
 * close-delimited, and the connection stays open. */
static void test_no_body_statuses(void)
{
	static const struct {
		int status, http_minor;
		const char *length; /* Content-Length kept in the head, or NULL */
	} cases[] = {
		{ 204, 1, NULL }, { 304, 1, "10" }, { 100, 1, NULL }, { 101, 1, NULL },
		{ 204, 0, NULL }, { 304, 0, "10" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_response r;
		struct http_buf out = { 0 };
		char want[200];
		size_t head_len;
		int st = cases[i].status;

		http_response_init(&r, false, true);
		CHECK(http_response_set_status(&r, st, NULL) == 0);
		CHECK(http_response_add_header(&r, "Content-Length", "10") == 0);
		CHECK(http_response_head(&r, &out, cases[i].http_minor, -1) == 0);
		snprintf(want, sizeof(want), "HTTP/1.1 %d %s\r\nDate: D\r\nServer: drover\r\n%s%s%s%s\r\n",
			 st, http_reason(st), cases[i].http_minor ? "" : "Connection: keep-alive\r\n",
			 cases[i].length ? "Content-Length: " : "",
			 cases[i].length ? cases[i].length : "", cases[i].length ? "\r\n" : "");
		CHECK_UNDATED(&out, want);
		CHECK(!r.chunked && !r.close_delimited && r.keep_alive);
		CHECK(!http_response_body_allowed(&r));
		head_len = out.len;
		CHECK(http_response_body(&r, &out, "0123456789", 10) == 0);
		CHECK(http_response_body(&r, &out, "xyz", 3) == 0); /* past the length: dropped too */
		CHECK(http_response_admit(&r, 100) == 0); /* sendfile's bytes */
		CHECK(http_response_body(&r, &out, "", 0) == 0);
		CHECK(http_response_end(&r, &out) == 0);
		CHECK(out.len == head_len);
		CHECK(r.body_sent == 0 && r.body_dropped == 113);
		CHECK(!http_response_length_reached(&r));
		http_response_free(&r);
		http_buf_free(&out);
	}
}

/* HEAD: whatever the app writes is dropped, in every framing. */
static void test_head_drops_body(void)
{
	struct http_response r;
	struct http_buf out = { 0 };

	http_response_init(&r, true, true);
	CHECK(http_response_body(&r, &out, "x", 1) == -1); /* before the head */
	CHECK(http_response_head(&r, &out, 0, -1) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 200 OK\r\nDate: D\r\nServer: drover\r\n"
			    "Connection: keep-alive\r\n\r\n");
	CHECK(!r.close_delimited && r.keep_alive); /* 1.0: no body to delimit */
	out.len = 0;
	CHECK(http_response_body(&r, &out, "abc", 3) == 0);
	CHECK(http_response_admit(&r, 7) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	CHECK(out.len == 0 && r.body_dropped == 10 && r.body_sent == 0);
	http_response_free(&r);

	/* a 204 to HEAD, and an error response to HEAD */
	http_response_init(&r, true, true);
	CHECK(http_response_set_status(&r, 204, NULL) == 0);
	CHECK(http_response_head(&r, &out, 1, 5) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 204 No Content\r\nDate: D\r\nServer: drover\r\n\r\n");
	http_response_free(&r);
	out.len = 0;
	CHECK(http_error_response_for(&out, 500, 1, true) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 500 Internal Server Error\r\nDate: D\r\n"
			    "Server: drover\r\nConnection: close\r\nContent-Length: 26\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	http_buf_free(&out);
}

/* The end of a body by its length: what lets a queueing io keep the last
 * block for the batch (and never a bodiless or chunked response). */
static void test_length_reached(void)
{
	struct http_response r;
	struct http_buf out = { 0 };

	http_response_init(&r, false, true);
	CHECK(http_response_add_header(&r, "Content-Length", "5") == 0);
	CHECK(http_response_head(&r, &out, 1, -1) == 0);
	CHECK(!http_response_length_reached(&r));
	CHECK(http_response_body(&r, &out, "hel", 3) == 0);
	CHECK(!http_response_length_reached(&r));
	CHECK(http_response_admit(&r, 2) == 1); /* as sendfile would */
	CHECK(http_response_length_reached(&r));
	CHECK(http_response_admit(&r, 1) == -1);
	CHECK(http_response_admit(&r, 0) == 0);
	http_response_free(&r);
	http_buf_free(&out);

	http_response_init(&r, false, true);
	CHECK(http_response_head(&r, &out, 1, -1) == 0); /* chunked */
	CHECK(http_response_body(&r, &out, "abc", 3) == 0);
	CHECK(!http_response_length_reached(&r));
	http_response_free(&r);
	http_buf_free(&out);
}

static void test_length_mismatch(void)
{
	struct http_response r;
	struct http_buf out = { 0 };

	http_response_init(&r, false, true);
	CHECK(http_response_add_header(&r, "Content-Length", "4") == 0);
	CHECK(http_response_head(&r, &out, 1, -1) == 0);
	CHECK(http_response_body(&r, &out, "abc", 3) == 0);
	CHECK(http_response_end(&r, &out) == -1); /* short by one */
	CHECK(http_response_body(&r, &out, "de", 2) == -1); /* over by one */
	CHECK(r.body_sent == 3);
	CHECK(http_response_body(&r, &out, "d", 1) == 0);
	CHECK(http_response_end(&r, &out) == 0);
	http_response_free(&r);
	http_buf_free(&out);
}

struct header_case {
	const char *name, *value;
	int rc;
};

static const struct header_case header_cases[] = {
	{ "X-Ok", "fine value\twith tab", 0 },
	{ "X-Empty", "", 0 },
	{ "X-Obs", "caf\xc3\xa9", 0 },
	{ "", "v", -1 },
	{ "Bad Name", "v", -1 },
	{ "Bad:Name", "v", -1 },
	{ "Bad\r\nName", "v", -1 },
	{ "X-Inject", "a\r\nSet-Cookie: x=1", -1 },
	{ "X-Cr", "a\rb", -1 },
	{ "X-Lf", "a\nb", -1 },
	{ "X-Ctl", "a\x01", -1 },
	{ "Content-Length", "abc", -1 },
	{ "Content-Length", "-1", -1 },
	{ "Content-Length", "1 2", -1 },
	{ "Content-Length", "", -1 },
	{ "Content-Length", "99999999999999999999", -1 },
};

static void test_header_validation(void)
{
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		const struct header_case *c = &header_cases[i];
		struct http_response r;
		int rc;

		http_response_init(&r, false, true);
		rc = http_response_add_header(&r, c->name, c->value);
		if (rc != c->rc)
			printf("#   header case %zu: rc %d\n", i, rc);
		CHECK(rc == c->rc);
		if (c->rc)
			CHECK(r.headers.len == 0 && !r.has_length);
		http_response_free(&r);
	}
}

/* Connection/Transfer-Encoding are drover's; Date/Server replace ours. */
static void test_app_header_policy(void)
{
	struct http_response r;
	struct http_buf out = { 0 };

	http_response_init(&r, false, true);
	CHECK(http_response_add_header(&r, "Transfer-Encoding", "chunked") == 0);
	CHECK(http_response_add_header(&r, "Connection", "Close") == 0);
	CHECK(http_response_add_header(&r, "Server", "app/1.0") == 0);
	CHECK(http_response_add_header(&r, "date", "Thu, 01 Jan 1970 00:00:00 GMT") == 0);
	CHECK(http_response_add_header(&r, "Content-Length", " 2 ") == 0);
	CHECK(http_response_add_header(&r, "Content-Length", "2") == 0);
	CHECK(http_response_add_header(&r, "Content-Length", "3") == -1);
	CHECK(http_response_head(&r, &out, 1, 99) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
			    "Server: app/1.0\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n");
	CHECK(!r.keep_alive);
	CHECK(http_response_add_header(&r, "X-Late", "v") == -1);
	http_response_free(&r);
	http_buf_free(&out);
}

static void test_header_bytes_limit(void)
{
	struct http_response r;
	char value[1000];
	int i, rc = 0;

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	http_response_init(&r, false, true);
	for (i = 0; i < 100 && rc == 0; i++)
		rc = http_response_add_header(&r, "X-Big", value);
	CHECK(rc == -1);
	CHECK(i == 66); /* 65 fields of 1008 bytes fit in 65536 */
	CHECK(r.headers.len <= HTTP_RESP_MAX_HEADERS_BYTES);
	http_response_free(&r);
}

static void test_status(void)
{
	struct http_response r;
	struct http_buf out = { 0 };

	http_response_init(&r, false, false);
	CHECK(http_response_set_status(&r, 99, NULL) == -1);
	CHECK(http_response_set_status(&r, 1000, NULL) == -1);
	CHECK(http_response_set_status(&r, 200, "OK\r\nX: y") == -1);
	CHECK(http_response_set_status(&r, 599, "Custom Thing") == 0);
	CHECK(http_response_head(&r, &out, 1, 0) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 599 Custom Thing\r\nDate: D\r\nServer: drover\r\n"
			    "Connection: close\r\nContent-Length: 0\r\n\r\n");
	CHECK(http_response_set_status(&r, 500, NULL) == -1); /* head sent */
	CHECK(http_response_head(&r, &out, 1, 0) == -1);
	http_response_free(&r);
	http_buf_free(&out);

	http_response_init(&r, false, true);
	out = (struct http_buf){ 0 };
	CHECK(http_response_set_status(&r, 799, NULL) == 0);
	CHECK(http_response_head(&r, &out, 1, 0) == 0);
	CHECK(out.len > 22 && memcmp(out.data, "HTTP/1.1 799 Unknown\r\n", 22) == 0);
	http_response_free(&r);
	http_buf_free(&out);
}

static void test_error_response(void)
{
	struct http_buf out = { 0 };

	CHECK(http_error_response(&out, 413, 1) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 413 Payload Too Large\r\nDate: D\r\nServer: drover\r\n"
			    "Connection: close\r\nContent-Length: 22\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
			    "413 Payload Too Large\n");
	out.len = 0;
	CHECK(http_error_response(&out, 400, 0) == 0);
	CHECK_UNDATED(&out, "HTTP/1.1 400 Bad Request\r\nDate: D\r\nServer: drover\r\n"
			    "Connection: close\r\nContent-Length: 16\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n\r\n400 Bad Request\n");
	out.len = 0;
	CHECK(http_error_response(&out, 42, 1) == 0); /* nonsense becomes 500 */
	CHECK(out.len > 34 && memcmp(out.data, "HTTP/1.1 500 Internal Server Error\r\n", 34) == 0);
	http_buf_free(&out);
}

static void test_reason(void)
{
	CHECK_STR(http_reason(200), "OK");
	CHECK_STR(http_reason(404), "Not Found");
	CHECK_STR(http_reason(431), "Request Header Fields Too Large");
	CHECK_STR(http_reason(505), "HTTP Version Not Supported");
	CHECK_STR(http_reason(299), "Unknown");
}

static void test_date(void)
{
	const char *d = http_date();
	struct tm tm = { 0 };
	time_t now = time(NULL), t;

	CHECK(strlen(d) == 29 && date_shape_ok(d));
	CHECK(strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm) != NULL);
	t = timegm(&tm);
	CHECK(t >= now - 2 && t <= now + 2);
	CHECK(http_date() == d); /* the per-thread cache */
}

static void test_buf(void)
{
	struct http_buf b = { 0 };

	CHECK(http_buf_append(&b, "hello world", 11) == 0);
	http_buf_consume(&b, 6);
	CHECK(b.len == 5 && memcmp(b.data, "world", 5) == 0);
	CHECK(http_buf_reserve(&b, 10000) == 0 && b.cap >= 10005);
	CHECK(b.len == 5 && memcmp(b.data, "world", 5) == 0);
	http_buf_consume(&b, 100);
	CHECK(b.len == 0);
	CHECK(http_buf_reserve(&b, (size_t)-1) == -1);
	http_buf_free(&b);
	CHECK(b.data == NULL && b.cap == 0);
}

int main(void)
{
	RUN(test_simple_known_length);
	RUN(test_framing);
	RUN(test_chunked_body);
	RUN(test_close_delimited_body);
	RUN(test_head_request);
	RUN(test_no_body_statuses);
	RUN(test_head_drops_body);
	RUN(test_length_reached);
	RUN(test_length_mismatch);
	RUN(test_header_validation);
	RUN(test_app_header_policy);
	RUN(test_header_bytes_limit);
	RUN(test_status);
	RUN(test_error_response);
	RUN(test_reason);
	RUN(test_date);
	RUN(test_buf);
	return check_summary();
}
