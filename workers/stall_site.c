/* Naming the blocking site of a stall (see stall_site.h).  faulthandler's
 * format (CPython Python/traceback.c): a header per thread, "Current thread
 * 0x... (most recent call first):" or "Thread 0x... (most recent call
 * first):", then lines '  File "PATH", line N in FUNC'. */
#include "workers/stall_site.h"

#include <stdio.h>
#include <string.h>

bool stall_site_python_lib(const char *path)
{
	if (path[0] == '<') /* <frozen importlib._bootstrap> */
		return true;
	/* the stdlib and installed packages, system-wide or in a venv */
	return strstr(path, "/lib/python3") != NULL;
}

static const char *base_name(const char *p, size_t n, size_t *out_n)
{
	const char *b = p;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '/')
			b = p + i + 1;
	*out_n = n - (size_t)(b - p);
	return b;
}

/* One frame line: path, line number, function.  False if not a frame. */
static bool parse_frame(const char *l, const char *end, char *path, size_t plen, long *line,
			char *fn, size_t flen)
{
	const char *p = strstr(l, "File \"");
	if (!p || p >= end)
		return false;
	p += 6;
	const char *q = memchr(p, '"', (size_t)(end - p));
	if (!q)
		return false;
	snprintf(path, plen, "%.*s", (int)(q - p), p);
	if (sscanf(q, "\", line %ld in ", line) != 1)
		return false;
	const char *f = strstr(q, " in ");
	if (!f || f >= end)
		return false;
	f += 4;
	snprintf(fn, flen, "%.*s", (int)(end - f), f);
	return true;
}

static void format_site(char *site, size_t len, const char *fn, const char *path, long line)
{
	size_t bn;
	const char *b = base_name(path, strlen(path), &bn);
	snprintf(site, len, "%s (%.*s:%ld)", fn, (int)bn, b, line);
}

bool stall_site_python(const char *dump, char *site, size_t len)
{
	site[0] = '\0';
	const char *t = strstr(dump, "Current thread ");
	if (!t)
		return false;
	const char *l = strchr(t, '\n');
	bool any = false;
	while (l && *++l == ' ') { /* frame lines are indented; a blank line ends the block */
		const char *end = strchr(l, '\n');
		if (!end)
			end = l + strlen(l);
		char path[512], fn[128];
		long line;
		if (parse_frame(l, end, path, sizeof(path), &line, fn, sizeof(fn))) {
			if (!any) /* innermost of all: the fallback */
				format_site(site, len, fn, path, line);
			any = true;
			if (!stall_site_python_lib(path)) {
				format_site(site, len, fn, path, line);
				return true;
			}
		}
		l = *end ? end : NULL;
	}
	return any;
}

int stall_site_cframe(const struct stall_cframe *f, int n)
{
	for (int i = 0; i < n; i++)
		if (f[i].in_app)
			return i;
	return -1;
}

void stall_site_cname(const struct stall_cframe *f, char *site, size_t len)
{
	size_t bn;
	if (f->src_file && f->src_file[0] && f->src_line > 0) {
		snprintf(site, len, "%s (%s:%d)", f->symbol ? f->symbol : "?", f->src_file,
			 f->src_line);
		return;
	}
	const char *obj = f->object ? f->object : "";
	const char *b = base_name(obj, strlen(obj), &bn);
	snprintf(site, len, "%s (%.*s+0x%lx)", f->symbol ? f->symbol : "?", (int)bn, b, f->offset);
}
