/* HTTP/1.x request parsing: llhttp drives the syntax, this file adds drover's
 * limits (enforced while bytes arrive), the request-smuggling checks llhttp
 * leaves to its user, and copies of the head into a per-connection arena.
 * llhttp is paused at the end of the head and of the message so the caller
 * gets control there and pipelined bytes stay unconsumed.  The line-ending
 * checks also close the holes of llhttp's default (non-strict) build. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "workers/http/http_parse.h"

/* in_value: where the header callbacks are (low bits), plus whether the last
 * byte consumed was CR or LF, carried between calls for the line-ending
 * checks of head_bytes_bad() and chunk_end_ok(). */
enum {
	IN_NONE = 0, /* between fields: the next name piece starts a field */
	IN_NAME = 1,
	IN_VALUE = 2,
	IN_MASK = 3,
	LAST_WAS_LF = 0x100, /* the last byte consumed was '\n' */
	LAST_WAS_CR = 0x200, /* the last byte consumed was '\r' */
};

static int parse_fail(struct http_parse *hp, int status, const char *reason)
{
	if (!hp->error_status) {
		hp->error_status = status;
		hp->error_reason = reason;
	}
	return -1;
}

static struct http_parse *hp_of(llhttp_t *p)
{
	return p->data;
}

/* The arena can never outgrow the request line plus max_header_count full
 * fields (each with two NULs); the per-field and count limits already imply
 * this, the check keeps memory bounded even if they were misconfigured. */
static size_t arena_limit(const struct http_parse *hp)
{
	const struct http_limits *l = hp->lim;

	return l->max_request_line + 2 +
	       (size_t)l->max_header_count * (l->max_header_size + 2);
}

static int arena_put(struct http_parse *hp, const char *at, size_t len)
{
	if (hp->arena_len + len > arena_limit(hp))
		return parse_fail(hp, 431, "request head too large");
	if (hp->arena_len + len > hp->arena_cap) {
		size_t cap = hp->arena_cap ? hp->arena_cap : 512;
		char *n;

		while (cap < hp->arena_len + len)
			cap *= 2;
		n = realloc(hp->arena, cap);
		if (!n)
			return parse_fail(hp, 500, "out of memory");
		hp->arena = n;
		hp->arena_cap = cap;
	}
	if (len)
		memcpy(hp->arena + hp->arena_len, at, len);
	hp->arena_len += len;
	return 0;
}

static int arena_nul(struct http_parse *hp)
{
	return arena_put(hp, "", 1);
}

static int line_grow(struct http_parse *hp, size_t len)
{
	hp->line_len += len;
	if (hp->line_len > hp->lim->max_request_line)
		return parse_fail(hp, 400, "request line too long");
	return 0;
}

/* --- request line ------------------------------------------------------ */

static int on_method(llhttp_t *p, const char *at, size_t len)
{
	struct http_parse *hp = hp_of(p);

	if (line_grow(hp, len) || arena_put(hp, at, len))
		return HPE_USER;
	hp->method_len += len;
	return 0;
}

static int on_method_complete(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);

	hp->line_len += 1; /* the SP before the target */
	if (arena_nul(hp))
		return -1;
	hp->target_off = hp->arena_len;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_parse *hp = hp_of(p);

	if (line_grow(hp, len) || arena_put(hp, at, len))
		return HPE_USER;
	hp->target_len += len;
	return 0;
}

static int on_url_complete(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);

	hp->line_len += 6; /* " HTTP/" */
	return arena_nul(hp);
}

static int on_version(llhttp_t *p, const char *at, size_t len)
{
	return line_grow(hp_of(p), len) ? HPE_USER : 0;
}

static bool version_supported(const llhttp_t *p)
{
	return p->http_major == 1 && p->http_minor <= 1;
}

static int on_version_complete(llhttp_t *p)
{
	if (!version_supported(p))
		return parse_fail(hp_of(p), 505, "unsupported HTTP version");
	return 0;
}

/* --- header fields (and trailers, which are counted but not kept) -------- */

static int field_begin(struct http_parse *hp)
{
	const struct http_limits *l = hp->lim;

	hp->in_value = (hp->in_value & ~IN_MASK) | IN_NAME;
	hp->field_len = 0;
	if (hp->state == HTTP_PARSE_BODY) {
		/* trailer: line_len is free after the head and counts trailers */
		if (++hp->line_len > l->max_header_count)
			return parse_fail(hp, 431, "too many trailer fields");
		return 0;
	}
	if (hp->nheaders >= l->max_header_count)
		return parse_fail(hp, 431, "too many header fields");
	if (hp->nheaders == hp->headers_cap) {
		size_t cap = hp->headers_cap ? hp->headers_cap * 2 : 16;
		struct drover_header *n = realloc(hp->headers, cap * sizeof(*n));

		if (!n)
			return parse_fail(hp, 500, "out of memory");
		hp->headers = n;
		hp->headers_cap = cap;
	}
	hp->cur_name_off = hp->arena_len;
	hp->cur_name_len = 0;
	return 0;
}

static int field_grow(struct http_parse *hp, size_t len)
{
	hp->field_len += len;
	if (hp->field_len > hp->lim->max_header_size)
		return parse_fail(hp, 431, "header field too large");
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_parse *hp = hp_of(p);

	if ((hp->in_value & IN_MASK) != IN_NAME && field_begin(hp))
		return HPE_USER;
	if (field_grow(hp, len))
		return HPE_USER;
	if (hp->state == HTTP_PARSE_BODY)
		return 0;
	if (arena_put(hp, at, len))
		return HPE_USER;
	hp->cur_name_len += len;
	return 0;
}

/* RFC 9110 tchar; llhttp in its default mode lets "Host :" through, which
 * is a known smuggling vector, so names are checked again here. */
static bool is_tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr(extra, c) != NULL;
}

static bool is_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);

	hp->in_value = (hp->in_value & ~IN_MASK) | IN_VALUE;
	if (hp->state == HTTP_PARSE_BODY)
		return 0;
	if (!is_token(hp->arena + hp->cur_name_off, hp->cur_name_len))
		return parse_fail(hp, 400, "invalid header name");
	if (arena_nul(hp))
		return -1;
	hp->headers[hp->nheaders].name.len = hp->cur_name_len;
	hp->cur_value_off = hp->arena_len;
	hp->cur_value_len = 0;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_parse *hp = hp_of(p);

	if (field_grow(hp, len))
		return HPE_USER;
	if (hp->state == HTTP_PARSE_BODY)
		return 0;
	if (hp->cur_value_len == 0) /* leading OWS, should llhttp pass any */
		while (len && (*at == ' ' || *at == '\t'))
			at++, len--;
	if (arena_put(hp, at, len))
		return HPE_USER;
	hp->cur_value_len += len;
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);
	const char *v = hp->arena + hp->cur_value_off;

	hp->in_value = (hp->in_value & ~IN_MASK) | IN_NONE;
	if (hp->state == HTTP_PARSE_BODY)
		return 0;
	while (hp->cur_value_len && (v[hp->cur_value_len - 1] == ' ' ||
				     v[hp->cur_value_len - 1] == '\t'))
		hp->cur_value_len--;
	hp->arena_len = hp->cur_value_off + hp->cur_value_len;
	if (arena_nul(hp))
		return -1;
	hp->headers[hp->nheaders].value.len = hp->cur_value_len;
	hp->nheaders++;
	return 0;
}

/* --- end of head: pointers, framing and smuggling checks ----------------- */

/* Names and values were packed in order (each followed by a NUL), so the
 * pointers can be set now that the arena no longer moves. */
static void head_fixup(struct http_parse *hp)
{
	size_t off = hp->target_off + hp->target_len + 1;

	for (size_t i = 0; i < hp->nheaders; i++) {
		struct drover_header *h = &hp->headers[i];

		h->name.ptr = hp->arena + off;
		off += h->name.len + 1;
		h->value.ptr = hp->arena + off;
		off += h->value.len + 1;
	}
}

static bool str_ieq(struct drover_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && strncasecmp(s.ptr, lit, n) == 0;
}

/* Walk the Transfer-Encoding list (all fields, in order).  Returns 0 when the
 * codings are exactly "chunked", 501 for a coding we cannot decode (the app
 * would otherwise get still-encoded bytes as its body), 400 for chunked that
 * is repeated or not last. */
static int te_check(const struct http_parse *hp)
{
	bool chunked = false, other = false;

	for (size_t i = 0; i < hp->nheaders; i++) {
		const struct drover_header *h = &hp->headers[i];
		const char *s = h->value.ptr, *end = s + h->value.len;

		if (!str_ieq(h->name, "transfer-encoding"))
			continue;
		while (s < end) {
			struct drover_str tok;

			while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
				s++;
			tok.ptr = s;
			while (s < end && *s != ',' && *s != ';' && *s != ' ' && *s != '\t')
				s++;
			tok.len = (size_t)(s - tok.ptr);
			while (s < end && *s != ',')
				s++; /* parameters */
			if (tok.len == 0)
				continue;
			if (chunked)
				return 400;
			if (str_ieq(tok, "chunked"))
				chunked = true;
			else
				other = true;
		}
	}
	return other ? 501 : 0;
}

static int head_check(struct http_parse *hp)
{
	llhttp_t *p = &hp->p;
	int te, hosts = 0;

	if (!version_supported(p))
		return parse_fail(hp, 505, "unsupported HTTP version");
	if ((p->flags & F_TRANSFER_ENCODING) && (p->flags & F_CONTENT_LENGTH))
		return parse_fail(hp, 400, "Transfer-Encoding with Content-Length");
	if ((p->flags & F_TRANSFER_ENCODING) && p->http_minor == 0)
		return parse_fail(hp, 400, "Transfer-Encoding in HTTP/1.0");
	te = te_check(hp);
	if (te == 400)
		return parse_fail(hp, 400, "chunked is not the last transfer coding");
	if (te == 501)
		return parse_fail(hp, 501, "unsupported transfer coding");
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > hp->lim->max_body)
		return parse_fail(hp, 413, "Content-Length exceeds the body limit");
	for (size_t i = 0; i < hp->nheaders; i++)
		hosts += str_ieq(hp->headers[i].name, "host");
	if (hosts > 1)
		return parse_fail(hp, 400, "several Host fields");
	return 0;
}

static void head_flags(struct http_parse *hp)
{
	llhttp_t *p = &hp->p;
	const struct drover_header *e;

	hp->http_major = p->http_major;
	hp->http_minor = p->http_minor;
	hp->keep_alive = llhttp_should_keep_alive(p);
	hp->upgrade = p->upgrade;
	hp->chunked = (p->flags & F_CHUNKED) != 0;
	if (hp->chunked)
		hp->content_length = -1;
	else if (p->flags & F_CONTENT_LENGTH)
		hp->content_length = (long long)p->content_length;
	else
		hp->content_length = 0;
	/* llhttp skips the body of CONNECT and of a body-less upgrade */
	if (hp->upgrade && (p->method == HTTP_CONNECT || hp->content_length == 0))
		hp->content_length = 0, hp->chunked = false;
	e = http_find_header(hp->headers, hp->nheaders, "expect");
	hp->expect_continue = e && hp->http_minor >= 1 && str_ieq(e->value, "100-continue");
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);

	head_fixup(hp);
	if (head_check(hp))
		return -1;
	head_flags(hp);
	if (hp->content_length == 0)
		return 0; /* on_message_complete follows at once and pauses */
	hp->state = HTTP_PARSE_BODY;
	hp->line_len = 0; /* now counts trailer fields */
	return HPE_PAUSED;
}

/* --- body ---------------------------------------------------------------- */

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_parse *hp = hp_of(p);

	if (hp->body_read + len > hp->lim->max_body)
		return parse_fail(hp, 413, "body exceeds the limit"), HPE_USER;
	if (len > hp->out_cap - hp->out_len) /* cannot happen: input is capped */
		return parse_fail(hp, 500, "body buffer overrun"), HPE_USER;
	memcpy(hp->out + hp->out_len, at, len);
	hp->out_len += len;
	hp->body_read += len;
	return 0;
}

/* The chunk size is known here, so an oversized chunk is refused before its
 * bytes arrive. */
static int on_chunk_header(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);

	hp->field_len = 0;
	if (p->content_length > hp->lim->max_body - hp->body_read)
		return parse_fail(hp, 413, "chunked body exceeds the limit");
	return 0;
}

static int on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
	struct http_parse *hp = hp_of(p);

	hp->field_len += len;
	if (hp->field_len > hp->lim->max_header_size)
		return parse_fail(hp, 400, "chunk extension too long"), HPE_USER;
	return 0;
}

static int on_chunk_complete(llhttp_t *p)
{
	return HPE_PAUSED; /* see chunk_end_ok() */
}

static int on_message_complete(llhttp_t *p)
{
	struct http_parse *hp = hp_of(p);

	hp->state = HTTP_PARSE_DONE;
	return HPE_PAUSED;
}

/* --- public API ---------------------------------------------------------- */

void http_parse_init(struct http_parse *hp, const struct http_limits *lim)
{
	memset(hp, 0, sizeof(*hp));
	hp->lim = lim;
	llhttp_settings_init(&hp->settings);
	hp->settings.on_method = on_method;
	hp->settings.on_method_complete = on_method_complete;
	hp->settings.on_url = on_url;
	hp->settings.on_url_complete = on_url_complete;
	hp->settings.on_version = on_version;
	hp->settings.on_version_complete = on_version_complete;
	hp->settings.on_header_field = on_header_field;
	hp->settings.on_header_field_complete = on_header_field_complete;
	hp->settings.on_header_value = on_header_value;
	hp->settings.on_header_value_complete = on_header_value_complete;
	hp->settings.on_headers_complete = on_headers_complete;
	hp->settings.on_body = on_body;
	hp->settings.on_chunk_header = on_chunk_header;
	hp->settings.on_chunk_extension_name = on_chunk_ext;
	hp->settings.on_chunk_extension_value = on_chunk_ext;
	hp->settings.on_chunk_complete = on_chunk_complete;
	hp->settings.on_message_complete = on_message_complete;
	llhttp_init(&hp->p, HTTP_REQUEST, &hp->settings);
	hp->p.data = hp;
	hp->state = HTTP_PARSE_HEAD;
}

void http_parse_free(struct http_parse *hp)
{
	free(hp->arena);
	free(hp->headers);
	hp->arena = NULL;
	hp->headers = NULL;
	hp->arena_cap = hp->headers_cap = 0;
}

void http_parse_next(struct http_parse *hp)
{
	llhttp_reset(&hp->p); /* keeps settings and data */
	hp->state = HTTP_PARSE_HEAD;
	hp->error_status = 0;
	hp->error_reason = NULL;
	hp->arena_len = 0;
	hp->nheaders = 0;
	hp->line_len = hp->field_len = 0;
	hp->method_off = hp->method_len = hp->target_off = hp->target_len = 0;
	hp->cur_name_off = hp->cur_name_len = hp->cur_value_off = hp->cur_value_len = 0;
	hp->in_value = IN_NONE;
	hp->http_major = hp->http_minor = 0;
	hp->keep_alive = hp->expect_continue = hp->chunked = hp->upgrade = false;
	hp->content_length = 0;
	hp->body_read = 0;
	hp->out = NULL;
	hp->out_len = hp->out_cap = 0;
}

/* Where llhttp stopped, as an offset into data[0..len). */
static size_t stop_offset(const struct http_parse *hp, const char *data, size_t len)
{
	const char *pos = llhttp_get_error_pos(&hp->p);

	if (!pos || pos < data || pos > data + len)
		return len;
	return (size_t)(pos - data);
}

/* llhttp's own errors.  llhttp accepts only 0.9, 1.0, 1.1 and 2.0 and stops
 * right after the minor digit of any other well-formed version; only its
 * reason text tells that apart from malformed ones ("HTTP/1.10", "HTTP/01.1"),
 * which stay 400.  (Checked against llhttp 8.1; tests pin it.) */
static void map_llhttp_error(struct http_parse *hp, llhttp_errno_t err)
{
	const char *why = llhttp_get_error_reason(&hp->p);

	if (hp->error_status)
		return;
	if (err == HPE_INVALID_VERSION && why && strcmp(why, "Invalid HTTP version") == 0)
		parse_fail(hp, 505, "unsupported HTTP version");
	else
		parse_fail(hp, 400, why ? why : "malformed request");
}

/* Run llhttp over data[0..len); returns the bytes consumed.  A pause (end of
 * head, chunk or message) is resumed at once: the position tells what was
 * used, and *paused tells the caller that llhttp may have more to do even
 * without more input. */
static size_t parse_exec(struct http_parse *hp, const char *data, size_t len, bool *paused)
{
	llhttp_errno_t err = llhttp_execute(&hp->p, data, len);
	size_t used = err == HPE_OK ? len : stop_offset(hp, data, len);

	*paused = false;
	if (err == HPE_OK && !hp->error_status)
		return len;
	if (err == HPE_PAUSED && !hp->error_status) {
		llhttp_resume(&hp->p);
		*paused = true;
		return used;
	}
	map_llhttp_error(hp, err);
	hp->state = HTTP_PARSE_ERROR;
	hp->keep_alive = false;
	return used;
}

/* llhttp without LLHTTP_STRICT_MODE still accepts a few things RFC 9112
 * lets a server refuse and that proxies disagree on (smuggling routes): an
 * obs-fold (handed over as more value bytes), and a CR followed by anything
 * at the end of the head ("\r\n\rX" ends it).  So the consumed head bytes
 * are checked here: every CR followed by LF, every LF preceded by CR, no
 * line starting with SP/HT.  The last byte is carried to the next call. */
static const char *head_bytes_bad(struct http_parse *hp, const char *data, size_t n)
{
	char prev = (hp->in_value & LAST_WAS_CR) ? '\r' : (hp->in_value & LAST_WAS_LF) ? '\n' : 0;

	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (prev == '\r' && c != '\n')
			return "CR without LF";
		if (c == '\n' && prev != '\r')
			return "LF without CR";
		if (prev == '\n' && (c == ' ' || c == '\t'))
			return "obsolete line folding";
		prev = c;
	}
	hp->in_value &= ~(LAST_WAS_CR | LAST_WAS_LF);
	if (prev == '\r')
		hp->in_value |= LAST_WAS_CR;
	else if (prev == '\n')
		hp->in_value |= LAST_WAS_LF;
	return NULL;
}

size_t http_parse_head(struct http_parse *hp, const char *data, size_t len)
{
	const char *why;
	size_t used;
	bool paused;

	if (hp->state != HTTP_PARSE_HEAD || len == 0)
		return 0;
	used = parse_exec(hp, data, len, &paused);
	why = hp->state != HTTP_PARSE_ERROR ? head_bytes_bad(hp, data, used) : NULL;
	if (why) {
		parse_fail(hp, 400, why);
		hp->state = HTTP_PARSE_ERROR;
		hp->keep_alive = false;
	}
	return used;
}

/* llhttp built without LLHTTP_STRICT_MODE skips the two bytes after chunk
 * data (and after the trailer section) without looking at them, so
 * "5\r\nhelloXX0\r\n\r\n" would pass: a smuggling route.  on_chunk_complete
 * pauses right after those bytes, at data[at]; check them here, the first
 * possibly being the last byte of the previous call. */
static bool chunk_end_ok(const struct http_parse *hp, const char *data, size_t at)
{
	if (at >= 2)
		return data[at - 2] == '\r' && data[at - 1] == '\n';
	return at == 1 && (hp->in_value & LAST_WAS_CR) && data[0] == '\n';
}

static void body_step(struct http_parse *hp, const char *data, size_t *used, size_t n,
		      bool *paused)
{
	*used += parse_exec(hp, data + *used, n, paused);
	if (*paused && hp->state == HTTP_PARSE_BODY && !chunk_end_ok(hp, data, *used)) {
		parse_fail(hp, 400, "chunk not followed by CRLF");
		hp->state = HTTP_PARSE_ERROR;
		hp->keep_alive = false;
	}
}

size_t http_parse_body(struct http_parse *hp, const char *data, size_t len, char *out,
		       size_t outcap, size_t *outlen)
{
	size_t used = 0;
	bool paused = false;

	*outlen = 0;
	if (hp->state != HTTP_PARSE_BODY)
		return 0;
	hp->out = out;
	hp->out_len = 0;
	hp->out_cap = outcap;
	/* decoded bytes never exceed raw bytes, so capping the input caps the
	 * output: the body is streamed without any buffer of our own.  After a
	 * pause llhttp runs once more even with no input left, so the end of
	 * the message is seen as soon as its last byte is. */
	while (hp->state == HTTP_PARSE_BODY) {
		size_t n = len - used;

		if (n > outcap - hp->out_len)
			n = outcap - hp->out_len;
		if (n == 0 && !paused)
			break;
		body_step(hp, data, &used, n, &paused);
	}
	if (used) {
		hp->in_value &= ~LAST_WAS_CR;
		if (data[used - 1] == '\r')
			hp->in_value |= LAST_WAS_CR;
	}
	*outlen = hp->out_len;
	hp->out = NULL;
	hp->out_len = hp->out_cap = 0;
	return used;
}

/* "http://host/p?q" -> "/p?q"; "http://host?q" -> "" (path then "/"). */
static struct drover_str strip_absolute(struct drover_str t, bool *absolute)
{
	size_t skip = 0;

	*absolute = false;
	if (t.len >= 7 && strncasecmp(t.ptr, "http://", 7) == 0)
		skip = 7;
	else if (t.len >= 8 && strncasecmp(t.ptr, "https://", 8) == 0)
		skip = 8;
	if (!skip)
		return t;
	*absolute = true;
	while (skip < t.len && t.ptr[skip] != '/' && t.ptr[skip] != '?' && t.ptr[skip] != '#')
		skip++;
	t.ptr += skip;
	t.len -= skip;
	return t;
}

void http_parse_request(const struct http_parse *hp, struct drover_request *req)
{
	struct drover_str t = { hp->arena + hp->target_off, hp->target_len };
	const char *q, *hash;
	bool absolute;

	req->method.ptr = hp->arena + hp->method_off;
	req->method.len = hp->method_len;
	req->target = t;
	t = strip_absolute(t, &absolute);
	hash = memchr(t.ptr, '#', t.len); /* clients should not send one */
	if (hash)
		t.len = (size_t)(hash - t.ptr);
	q = memchr(t.ptr, '?', t.len);
	req->path.ptr = t.ptr;
	req->path.len = q ? (size_t)(q - t.ptr) : t.len;
	req->query.ptr = q ? q + 1 : t.ptr + t.len;
	req->query.len = q ? t.len - req->path.len - 1 : 0;
	if (absolute && req->path.len == 0)
		req->path.ptr = "/", req->path.len = 1;
	req->http_major = hp->http_major;
	req->http_minor = hp->http_minor;
	req->headers = hp->headers;
	req->nheaders = hp->nheaders;
	req->content_length = hp->content_length;
}

const struct drover_header *http_find_header(const struct drover_header *h, size_t n,
					     const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (h[i].name.len == len && strncasecmp(h[i].name.ptr, name, len) == 0)
			return &h[i];
	return NULL;
}
