/* Access log formatting.  Codes (Apache's meanings): %h peer address, %l and
 * %u "-", %t time [10/Oct/2000:13:55:36 +0000], %r request line, %s status,
 * %b body bytes ("-" for none), %B body bytes (0 for none), %D duration in microseconds, %T in
 * seconds (with a fraction), %M in milliseconds, %L seconds as gunicorn's L, %m method, %U path, %q query, %H protocol, %p pid, %{Name}i a
 * request header, %% a percent sign. */
#include "access_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workers/http/http_parse.h"

#define MAX_PIECES 64

struct piece {
	char code; /* 0: literal text */
	char text[64]; /* literal, or the header name of %{Name}i */
};

struct access_log {
	int fd;
	size_t n;
	struct piece p[MAX_PIECES];
};

static const struct {
	const char *name, *fmt;
} presets[] = {
	{"drover", "%h \"%r\" %s %b %Dus"},
	{"common", "%h %l %u %t \"%r\" %s %b"},
	{"combined", "%h %l %u %t \"%r\" %s %b \"%{Referer}i\" \"%{User-Agent}i\""},
};

static int add_piece(struct access_log *a, char code, const char *t, size_t len)
{
	if (a->n == MAX_PIECES || len >= sizeof(a->p[0].text))
		return -1;
	struct piece *p = &a->p[a->n++];
	p->code = code;
	memcpy(p->text, t, len);
	p->text[len] = 0;
	return 0;
}

static int compile(struct access_log *a, const char *f, char *err, size_t errlen)
{
	while (*f) {
		const char *pct = strchr(f, '%');
		size_t lit = pct ? (size_t)(pct - f) : strlen(f);
		for (size_t off = 0; off < lit; off += 63)
			if (add_piece(a, 0, f + off, lit - off < 63 ? lit - off : 63) < 0)
				goto too_long;
		if (!pct)
			return 0;
		f = pct + 1;
		if (*f == '{') {
			const char *end = strstr(f, "}i");
			if (!end || end - f - 1 <= 0 || add_piece(a, 'i', f + 1, (size_t)(end - f - 1)) < 0) {
				snprintf(err, errlen, "access_log_format: bad %%{Header}i near '%.20s'", f);
				return -1;
			}
			f = end + 2;
		} else if (*f && strchr("hlutrsbBDTMLmUqHp%", *f)) {
			if (add_piece(a, *f, "", 0) < 0)
				goto too_long;
			f++;
		} else {
			snprintf(err, errlen, "access_log_format: unknown code '%%%c'", *f ? *f : ' ');
			return -1;
		}
	}
	return 0;
too_long:
	snprintf(err, errlen, "access_log_format: format too long");
	return -1;
}

struct access_log *access_log_new(const char *fmt, int fd, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(fmt, presets[i].name) == 0)
			fmt = presets[i].fmt;
	struct access_log *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = fd;
	if (compile(a, fmt, err, errlen) < 0) {
		free(a);
		return NULL;
	}
	return a;
}

void access_log_free(struct access_log *a)
{
	free(a);
}

void access_log_set_fd(struct access_log *a, int fd)
{
	a->fd = fd;
}

int access_log_fd(const struct access_log *a)
{
	return a->fd;
}

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n >= o->cap)
		n = o->cap - o->len - 1;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putstr(struct out *o, struct drover_str s)
{
	if (s.len)
		put(o, s.ptr, s.len);
	else
		put(o, "-", 1);
}

static void put_num(struct out *o, unsigned long long v)
{
	char b[24];
	put(o, b, (size_t)snprintf(b, sizeof(b), "%llu", v));
}

static void put_time(struct out *o)
{
	char b[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	put(o, b, strftime(b, sizeof(b), "[%d/%b/%Y:%H:%M:%S +0000]", &tm));
}

static void put_request_line(struct out *o, const struct drover_request *r)
{
	if (!r->method.len) {
		puts_(o, "-");
		return;
	}
	char v[16];
	put(o, r->method.ptr, r->method.len);
	put(o, " ", 1);
	put(o, r->target.ptr, r->target.len);
	put(o, v, (size_t)snprintf(v, sizeof(v), " HTTP/%d.%d", r->http_major, r->http_minor));
}

static void put_code(struct out *o, const struct piece *p, const struct drover_request *r,
		     int status, uint64_t bytes, uint64_t ns)
{
	char b[32];
	switch (p->code) {
	case 'h': puts_(o, r->peer_addr && *r->peer_addr ? r->peer_addr : "-"); break;
	case 'l': case 'u': puts_(o, "-"); break;
	case 't': put_time(o); break;
	case 'r': put_request_line(o, r); break;
	case 's': put_num(o, (unsigned long long)status); break;
	case 'b': if (bytes) put_num(o, bytes); else puts_(o, "-"); break;
	case 'B': put_num(o, bytes); break;
	case 'D': put_num(o, ns / 1000); break;
	case 'T': put(o, b, (size_t)snprintf(b, sizeof(b), "%.6f", (double)ns / 1e9)); break;
	case 'M': put_num(o, ns / 1000000); break;
	case 'L': put(o, b, (size_t)snprintf(b, sizeof(b), "%.6f", (double)ns / 1e9)); break;
	case 'm': putstr(o, r->method); break;
	case 'U': putstr(o, r->path); break;
	case 'q': if (r->query.len) put(o, r->query.ptr, r->query.len); break;
	case 'H': put(o, b, (size_t)snprintf(b, sizeof(b), "HTTP/%d.%d", r->http_major, r->http_minor)); break;
	case 'p': put_num(o, (unsigned long long)getpid()); break;
	case '%': put(o, "%", 1); break;
	case 'i': {
		const struct drover_header *h = http_find_header(r->headers, r->nheaders, p->text);
		if (h)
			putstr(o, h->value);
		else
			puts_(o, "-");
		break;
	}
	}
}

size_t access_log_format(const struct access_log *a, char *buf, size_t cap,
			 const struct drover_request *req, int status, uint64_t bytes,
			 uint64_t duration_ns)
{
	struct out o = {buf, 0, cap - 1}; /* room for the newline */
	for (size_t i = 0; i < a->n; i++) {
		if (a->p[i].code == 0)
			puts_(&o, a->p[i].text);
		else
			put_code(&o, &a->p[i], req, status, bytes, duration_ns);
	}
	buf[o.len++] = '\n';
	buf[o.len] = 0;
	return o.len;
}

void access_log_write(struct access_log *a, const struct drover_request *req, int status,
		      uint64_t bytes, uint64_t duration_ns)
{
	char line[4096];
	size_t n = access_log_format(a, line, sizeof(line), req, status, bytes, duration_ns);
	ssize_t w = write(a->fd, line, n);
	(void)w; /* a full disk must not fail the request */
}
