/* HTTP/1.x response framing: the status line and headers drover adds (Date,
 * Server, Connection, Content-Length or chunked), body framing and canned
 * error responses.  This runs for every response, so the head is written
 * with memcpy and hand-rolled integer formatting rather than snprintf.
 * Connection header policy: an HTTP/1.1 keep-alive response carries none
 * (persistence is the 1.1 default); HTTP/1.0 keep-alive gets
 * "Connection: keep-alive"; every response that ends the connection gets
 * "Connection: close". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "workers/http/http_response.h"

#define LIT(s) s, sizeof(s) - 1

/* --- growable buffer ----------------------------------------------------- */

int http_buf_reserve(struct http_buf *b, size_t extra)
{
	size_t need, cap;
	char *n;

	if (extra > SIZE_MAX / 2 - b->len) /* also keeps cap * 2 from overflowing */
		return -1;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	n = realloc(b->data, cap);
	if (!n)
		return -1;
	b->data = n;
	b->cap = cap;
	return 0;
}

int http_buf_append(struct http_buf *b, const void *p, size_t n)
{
	if (http_buf_reserve(b, n))
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void http_buf_consume(struct http_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void http_buf_free(struct http_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* --- small formatting helpers ------------------------------------------ */

/* Decimal digits of v at the end of buf[20]; returns the first digit. */
static char *fmt_dec(char buf[20], unsigned long long v)
{
	char *p = buf + 20;

	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	return p;
}

static char *fmt_hex(char buf[16], unsigned long long v)
{
	static const char digits[] = "0123456789abcdef";
	char *p = buf + 16;

	do
		*--p = digits[v & 15];
	while (v >>= 4);
	return p;
}

static char *put(char *w, const char *s, size_t n)
{
	memcpy(w, s, n);
	return w + n;
}

static char *put_dec(char *w, unsigned long long v)
{
	char buf[20], *d = fmt_dec(buf, v);

	return put(w, d, (size_t)(buf + 20 - d));
}

static bool is_tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr(extra, c) != NULL;
}

/* Field values and reason phrases: no CTLs but HTAB (so no CR, LF, NUL). */
static bool is_text(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* --- reason phrases and the Date cache ----------------------------------- */

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Entity";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static void put2(char *w, int v)
{
	w[0] = (char)('0' + v / 10);
	w[1] = (char)('0' + v % 10);
}

/* IMF-fixdate by hand: strftime would follow the locale. */
static void format_date(char out[30], time_t t)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;

	gmtime_r(&t, &tm);
	memcpy(out, days + 3 * tm.tm_wday, 3);
	memcpy(out + 3, ", ", 2);
	put2(out + 5, tm.tm_mday);
	out[7] = ' ';
	memcpy(out + 8, months + 3 * tm.tm_mon, 3);
	out[11] = ' ';
	put2(out + 12, (tm.tm_year + 1900) / 100);
	put2(out + 14, (tm.tm_year + 1900) % 100);
	out[16] = ' ';
	put2(out + 17, tm.tm_hour);
	out[19] = ':';
	put2(out + 20, tm.tm_min);
	out[22] = ':';
	put2(out + 23, tm.tm_sec);
	memcpy(out + 25, " GMT", 5); /* with the NUL */
}

/* CLOCK_REALTIME_COARSE is served from the vDSO without a syscall; the
 * string is rebuilt only when the second changes.  Per thread, so the
 * thread model needs no lock. */
const char *http_date(void)
{
	static _Thread_local char cached[30];
	static _Thread_local time_t cached_sec = -1;
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
		ts.tv_sec = time(NULL);
	if (ts.tv_sec != cached_sec) {
		format_date(cached, ts.tv_sec);
		cached_sec = ts.tv_sec;
	}
	return cached;
}

/* --- building a response ------------------------------------------------- */

void http_response_init(struct http_response *r, bool head_request, bool keep_alive)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->content_length = -1;
	r->head_request = head_request;
	r->keep_alive = keep_alive;
}

void http_response_free(struct http_response *r)
{
	http_buf_free(&r->headers);
}

int http_response_set_status(struct http_response *r, int status, const char *reason)
{
	size_t n;

	if (r->head_sent || status < 100 || status > 999)
		return -1;
	if (reason && !is_text(reason))
		return -1;
	r->status = status;
	r->reason[0] = '\0';
	if (reason) { /* empty reason: the standard phrase is used */
		n = strnlen(reason, sizeof(r->reason) - 1);
		memcpy(r->reason, reason, n);
		r->reason[n] = '\0';
	}
	return 0;
}

/* Content-Length from the app: digits only (OWS around is tolerated). */
static int parse_length(const char *v, long long *out)
{
	unsigned long long n = 0;
	const char *s = v + strspn(v, " \t");
	const char *d = s;

	while (*d >= '0' && *d <= '9') {
		if (n > (unsigned long long)(INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (unsigned long long)(*d++ - '0');
	}
	if (d == s || d[strspn(d, " \t")] != '\0')
		return -1;
	*out = (long long)n;
	return 0;
}

static int add_length(struct http_response *r, const char *value)
{
	long long n;

	if (parse_length(value, &n))
		return -1;
	if (r->has_length && r->content_length != n)
		return -1; /* two different lengths: refuse rather than pick */
	r->has_length = true;
	r->content_length = n;
	return 0;
}

/* Connection and Transfer-Encoding are drover's to decide (the app does not
 * know the framing); an app's "Connection: close" is still honoured. */
static bool hop_by_hop(struct http_response *r, const char *name, const char *value)
{
	if (strcasecmp(name, "transfer-encoding") == 0)
		return true;
	if (strcasecmp(name, "connection") != 0)
		return false;
	if (strcasestr(value, "close"))
		r->keep_alive = false;
	return true;
}

int http_response_add_header(struct http_response *r, const char *name, const char *value)
{
	size_t nl, vl;
	char *w;

	if (r->head_sent || !name || !value)
		return -1;
	nl = strlen(name);
	vl = strlen(value);
	for (size_t i = 0; i < nl; i++)
		if (!is_tchar((unsigned char)name[i]))
			return -1;
	if (nl == 0 || !is_text(value))
		return -1;
	if (strcasecmp(name, "content-length") == 0)
		return add_length(r, value);
	if (hop_by_hop(r, name, value))
		return 0;
	if (r->headers.len + nl + vl + 4 > HTTP_RESP_MAX_HEADERS_BYTES)
		return -1;
	if (http_buf_reserve(&r->headers, nl + vl + 4))
		return -1;
	w = r->headers.data + r->headers.len;
	w = put(w, name, nl);
	w = put(w, LIT(": "));
	w = put(w, value, vl);
	w = put(w, LIT("\r\n"));
	r->headers.len = (size_t)(w - r->headers.data);
	return 0;
}

/* Did the app give this header?  Only asked for Date and Server, once per
 * response; app header blocks are short. */
static bool app_has(const struct http_buf *h, const char *name, size_t n)
{
	if (!h->data)
		return false; /* no app header yet (and NULL + 0 is UB: fuzz_http_response) */
	const char *s = h->data, *end = h->data + h->len;

	while (s && s + n < end) {
		if (s[n] == ':' && strncasecmp(s, name, n) == 0)
			return true;
		s = memchr(s, '\n', (size_t)(end - s));
		if (s)
			s++;
	}
	return false;
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

bool http_response_body_allowed(const struct http_response *r)
{
	return !r->head_request && status_has_body(r->status);
}

/* Decide the framing: Content-Length, chunked, or the close of the
 * connection; and whether the connection may stay open. */
static void response_framing(struct http_response *r, int http_minor, long long known)
{
	if (r->status < 200 || r->status == 204) {
		/* RFC 9110 §8.6: a 1xx or 204 carries no Content-Length. */
		r->has_length = false;
		r->content_length = -1;
	} else if (r->status == 304) {
		/* §15.4.5: the app's length (if any) is the selected
		 * representation's, kept as given; none is computed. */
	} else if (!r->has_length && known >= 0) {
		r->has_length = true;
		r->content_length = known;
	} else if (!r->has_length && http_minor >= 1) {
		/* A HEAD gets the header fields a GET would (§9.3.2); no
		 * chunk is ever framed for it. */
		r->chunked = true;
	} else if (!r->has_length && !r->head_request) {
		/* HTTP/1.0 and no length: only the close can end the body */
		r->close_delimited = true;
		r->keep_alive = false;
	}
}

/* Date, Server, Connection and the framing header. */
static char *put_own_headers(const struct http_response *r, char *w, int http_minor)
{
	if (!app_has(&r->headers, "Date", 4)) {
		w = put(w, LIT("Date: "));
		w = put(w, http_date(), 29);
		w = put(w, LIT("\r\n"));
	}
	if (!app_has(&r->headers, "Server", 6))
		w = put(w, LIT("Server: drover\r\n"));
	if (!r->keep_alive)
		w = put(w, LIT("Connection: close\r\n"));
	else if (http_minor == 0)
		w = put(w, LIT("Connection: keep-alive\r\n"));
	if (r->has_length) {
		w = put(w, LIT("Content-Length: "));
		w = put_dec(w, (unsigned long long)r->content_length);
		w = put(w, LIT("\r\n"));
	} else if (r->chunked) {
		w = put(w, LIT("Transfer-Encoding: chunked\r\n"));
	}
	return w;
}

int http_response_head(struct http_response *r, struct http_buf *out, int http_minor,
		       long long body_len_known)
{
	const char *reason = r->reason[0] ? r->reason : http_reason(r->status);
	size_t rl = strlen(reason);
	char *w;

	if (r->head_sent)
		return -1;
	response_framing(r, http_minor, body_len_known);
	/* status line + Date + Server + Connection + length + app + CRLF */
	if (http_buf_reserve(out, 16 + rl + 40 + 20 + 28 + 40 + r->headers.len + 2))
		return -1;
	w = out->data + out->len;
	w = put(w, LIT("HTTP/1.1 "));
	*w++ = (char)('0' + r->status / 100);
	*w++ = (char)('0' + r->status / 10 % 10);
	*w++ = (char)('0' + r->status % 10);
	*w++ = ' ';
	w = put(w, reason, rl);
	w = put(w, LIT("\r\n"));
	w = put_own_headers(r, w, http_minor);
	if (r->headers.len)
		w = put(w, r->headers.data, r->headers.len);
	w = put(w, LIT("\r\n"));
	out->len = (size_t)(w - out->data);
	r->head_sent = true;
	return 0;
}

int http_response_admit(struct http_response *r, size_t n)
{
	if (!r->head_sent)
		return -1;
	if (!http_response_body_allowed(r)) {
		r->body_dropped += n;
		return 0;
	}
	if (r->has_length && (unsigned long long)r->content_length - r->body_sent < n)
		return -1;
	r->body_sent += n;
	return n > 0;
}

bool http_response_length_reached(const struct http_response *r)
{
	return r->has_length && http_response_body_allowed(r) &&
	       r->body_sent >= (unsigned long long)r->content_length;
}

int http_response_body(struct http_response *r, struct http_buf *out, const void *p, size_t n)
{
	char hex[16], *h, *w;
	size_t hl;
	int rc = http_response_admit(r, n);

	if (rc <= 0) /* an empty chunk would end a chunked body: never framed */
		return rc;
	if (!r->chunked)
		return http_buf_append(out, p, n);
	h = fmt_hex(hex, n);
	hl = (size_t)(hex + 16 - h);
	if (http_buf_reserve(out, hl + n + 4))
		return -1;
	w = out->data + out->len;
	w = put(w, h, hl);
	w = put(w, LIT("\r\n"));
	w = put(w, p, n);
	w = put(w, LIT("\r\n"));
	out->len = (size_t)(w - out->data);
	return 0;
}

int http_response_end(struct http_response *r, struct http_buf *out)
{
	if (!r->head_sent)
		return -1;
	if (!http_response_body_allowed(r))
		return 0; /* ends at the head; a HEAD's or 304's length is the GET's */
	if (r->chunked)
		return http_buf_append(out, LIT("0\r\n\r\n"));
	if (r->has_length && r->body_sent < (unsigned long long)r->content_length)
		return -1;
	return 0;
}

int http_error_response_for(struct http_buf *out, int status, int http_minor, bool head_request)
{
	struct http_response r;
	char body[80], *w = body;
	const char *reason;
	int rc;

	if (status < 100 || status > 999)
		status = 500;
	reason = http_reason(status);
	w = put_dec(w, (unsigned long long)status);
	*w++ = ' ';
	w = put(w, reason, strlen(reason));
	*w++ = '\n';
	http_response_init(&r, head_request, false);
	rc = http_response_set_status(&r, status, NULL);
	if (!rc)
		rc = http_response_add_header(&r, "Content-Type", "text/plain; charset=utf-8");
	if (!rc)
		rc = http_response_head(&r, out, http_minor, w - body);
	if (!rc)
		rc = http_response_body(&r, out, body, (size_t)(w - body));
	if (!rc)
		rc = http_response_end(&r, out);
	http_response_free(&r);
	return rc;
}

int http_error_response(struct http_buf *out, int status, int http_minor)
{
	return http_error_response_for(out, status, http_minor, false);
}
