/* HTTP/1.x response framing: status line, headers (Date, Server, Connection,
 * Content-Length or chunked), body framing, error responses.  Pure: it writes
 * bytes into a growable buffer (struct http_buf); the caller sends them. */
#ifndef DROVER_HTTP_RESPONSE_H
#define DROVER_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct http_buf {
	char *data;
	size_t len, cap;
};
int http_buf_reserve(struct http_buf *b, size_t extra); /* 0, or -1 on ENOMEM */
int http_buf_append(struct http_buf *b, const void *p, size_t n);
void http_buf_consume(struct http_buf *b, size_t n); /* drop n bytes from the front */
void http_buf_free(struct http_buf *b);

#define HTTP_RESP_MAX_HEADERS_BYTES 65536

struct http_response {
	int status;
	char reason[64];
	struct http_buf headers; /* "Name: value\r\n"... as added by the app */
	bool head_sent;
	bool has_length; /* the app gave Content-Length */
	long long content_length;
	bool chunked; /* body sent with chunked framing */
	bool close_delimited; /* HTTP/1.0 client without a length: close ends the body */
	bool keep_alive; /* Connection: keep-alive will be sent (decided at head time) */
	bool head_request; /* HEAD: no body bytes are sent */
	unsigned long long body_sent; /* body bytes framed for the wire (or sent raw) */
	unsigned long long body_dropped; /* bytes the app gave a bodiless response */
};

/* Start a response.  keep_alive: what the request allows and the server wants;
 * it may still be turned off (e.g. no length on HTTP/1.0). */
void http_response_init(struct http_response *r, bool head_request, bool keep_alive);
void http_response_free(struct http_response *r);
/* 0, or -1 if the head was sent already or status is outside 100..999. */
int http_response_set_status(struct http_response *r, int status, const char *reason);
/* Whether an app may give status as its (final) response: 200..599.  RFC
 * 9110 section 15: codes outside 100..599 are invalid on the wire, and a 1xx
 * is interim (section 15.2), never the answer; drover sends 100 Continue
 * and 101 itself. */
static inline bool http_final_status_ok(int status)
{
	return status >= 200 && status <= 599;
}
/* 0, or -1 for CR/LF/NUL in name or value, an invalid name token, or too many
 * header bytes.  Content-Length is parsed into has_length/content_length;
 * Connection and Transfer-Encoding from the app are dropped and Date/Server
 * from the app replace drover's own. */
int http_response_add_header(struct http_response *r, const char *name, const char *value);

/* Write the status line and headers into out.  body_len_known >= 0: the whole
 * body is known to be this long (used when the app gave no Content-Length);
 * -1: unknown, so chunked for HTTP/1.1 (http_minor >= 1) or close-delimited.
 * Bodiless responses (see http_response_body_allowed) are never chunked or
 * close-delimited; 1xx and 204 lose any Content-Length (RFC 9110 §8.6), a
 * 304's or a HEAD's from the app is kept as it describes the GET body. */
int http_response_head(struct http_response *r, struct http_buf *out, int http_minor,
		       long long body_len_known);
/* RFC 9112 §6.3, RFC 9110 §15.3.5, §15.4.5: a response to HEAD, a 1xx, a 204
 * and a 304 end at their header section.  The one place that decides whether
 * body bytes may go on the wire; every body path (framed writes, sendfile)
 * goes through http_response_admit, which asks it. */
bool http_response_body_allowed(const struct http_response *r);
/* Admit n body bytes after the head: 1 they go on the wire (counted in
 * body_sent), 0 they are dropped (a bodiless response: counted in
 * body_dropped, or n == 0), -1 past the announced Content-Length or before
 * the head.  For bytes sent outside http_response_body (sendfile). */
int http_response_admit(struct http_response *r, size_t n);
/* The body is complete by its announced length: nothing more may follow. */
bool http_response_length_reached(const struct http_response *r);
/* Frame body bytes into out (chunk header/trailer when chunked; nothing for
 * a bodiless response).  Returns 0, or -1 if the app writes past its
 * Content-Length or out of memory. */
int http_response_body(struct http_response *r, struct http_buf *out, const void *p, size_t n);
/* Finish the body (last chunk "0\r\n\r\n" when chunked).  Returns 0, or -1 if
 * fewer bytes than the announced Content-Length were written (the connection
 * must then be closed). */
int http_response_end(struct http_response *r, struct http_buf *out);

/* A complete small error response (text/plain body naming the status),
 * always with Connection: close. */
int http_error_response(struct http_buf *out, int status, int http_minor);
/* The same for a request whose method is known: a HEAD gets no body. */
int http_error_response_for(struct http_buf *out, int status, int http_minor, bool head_request);
/* Standard reason phrase, "Unknown" if none. */
const char *http_reason(int status);
/* "Sun, 06 Nov 1994 08:49:37 GMT" for now, cached per second (per thread). */
const char *http_date(void);
#endif
