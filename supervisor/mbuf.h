/* A growing output buffer with a hard limit, for everything the master
 * renders (Prometheus text, status JSON, control answers): past max it stops
 * growing and sets failed, so no renderer can take unbounded memory. */
#ifndef DROVER_MBUF_H
#define DROVER_MBUF_H

#include <stdbool.h>
#include <stddef.h>

struct mbuf {
	char *p; /* NUL-terminated while not failed */
	size_t len, cap, max;
	bool failed;
};

void mbuf_init(struct mbuf *b, size_t max);
void mbuf_free(struct mbuf *b);
void mbuf_put(struct mbuf *b, const char *s, size_t n);
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal (RFC 8259 §7), quotes included. */
void mbuf_json_str(struct mbuf *b, const char *s);
/* v as the value of a Prometheus label (text exposition format): backslash,
 * double quote and newline escaped; the quotes are the caller's. */
void mbuf_prom_label(struct mbuf *b, const char *v);
/* A JSON number, or null for NaN and infinities (JSON has neither). */
void mbuf_json_num(struct mbuf *b, double v);
#endif
