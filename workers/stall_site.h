/* Naming the blocking site of a stall: the innermost frame that belongs to
 * the app, not to drover, libc or the interpreter.  Pure functions over text
 * and frame lists, unit-tested (tests/unit/test_stall_site.c). */
#ifndef DROVER_STALL_SITE_H
#define DROVER_STALL_SITE_H

#include <stdbool.h>
#include <stddef.h>

/* From a faulthandler dump (all threads, "Current thread 0x..." marking the
 * one that took the signal, most recent call first), the innermost frame of
 * the current thread outside the Python installation (stdlib, dist-packages),
 * as "func (file.py:line)"; if every frame is there, the innermost one.
 * Returns false (site = "") when the dump has no current thread. */
bool stall_site_python(const char *dump, char *site, size_t len);

/* Whether a source path belongs to the Python installation rather than the
 * app: /usr/lib/python3.X/..., .../site-packages/... of the system, <frozen>. */
bool stall_site_python_lib(const char *path);

/* One C frame, resolved by dladdr in the caller. */
struct stall_cframe {
	const char *object; /* the shared object's path, "" if unknown */
	const char *symbol; /* NULL if not resolved */
	unsigned long offset; /* from the object's base */
	bool in_app; /* the object is the app's (the one holding its handler) */
	const char *src_file; /* source file basename from debug info, NULL if unknown */
	int src_line;
};
/* Index of the innermost app frame (frames[0] is the innermost), -1 if none. */
int stall_site_cframe(const struct stall_cframe *f, int n);
/* "symbol (file.c:41)" when the source line is known, else
 * "symbol (object+0xoffset)" with object's basename; "?" for no symbol. */
void stall_site_cname(const struct stall_cframe *f, char *site, size_t len);
#endif
