/* The bounded output buffer (see mbuf.h). */
#include "supervisor/mbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mbuf_init(struct mbuf *b, size_t max)
{
	*b = (struct mbuf){.max = max};
}

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	*b = (struct mbuf){0};
}

static bool mbuf_reserve(struct mbuf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (cap > b->max && b->len + n + 1 <= b->max)
		cap = b->max;
	char *p = cap <= b->max ? realloc(b->p, cap) : NULL;
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void mbuf_put(struct mbuf *b, const char *s, size_t n)
{
	if (!mbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !mbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void mbuf_json_str(struct mbuf *b, const char *s)
{
	mbuf_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			mbuf_printf(b, "\\%c", c);
		else if (c < 0x20)
			mbuf_printf(b, "\\u%04x", c);
		else
			mbuf_put(b, (const char *)&c, 1);
	}
	mbuf_put(b, "\"", 1);
}

void mbuf_json_num(struct mbuf *b, double v)
{
	if (isfinite(v))
		mbuf_printf(b, "%.6g", v);
	else
		mbuf_put(b, "null", 4);
}

void mbuf_prom_label(struct mbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			mbuf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			mbuf_put(b, "\\n", 2);
		else
			mbuf_put(b, v, 1);
	}
}
