/* Rendering the sampler's data: Prometheus text exposition (0.0.4), the
 * status JSON, and the human table `drover ctl status` prints.  Pure over a
 * struct sampler: no I/O, no clock.  Also the HTTP metrics listener's entry
 * points (metrics_http.c). */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct sampler;
struct arbiter;

/* A growing output buffer with a hard limit: past max it stops growing and
 * sets failed, so a renderer can never take unbounded memory. */
struct mbuf {
	char *p;
	size_t len, cap, max;
	bool failed;
};
void mbuf_init(struct mbuf *b, size_t max);
void mbuf_free(struct mbuf *b);
void mbuf_put(struct mbuf *b, const char *s, size_t n);
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal, quotes included. */
void mbuf_json_str(struct mbuf *b, const char *s);
/* A JSON number, or null for NaN and infinities. */
void mbuf_json_num(struct mbuf *b, double v);

void metrics_prometheus(const struct sampler *s, struct mbuf *out);
void metrics_status_json(const struct sampler *s, struct mbuf *out);
void metrics_status_table(const struct sampler *s, struct mbuf *out);

/* The optional HTTP listener (metrics_bind): GET /metrics, GET /status.json. */
int metrics_http_start(struct arbiter *ar);
void metrics_http_stop(struct arbiter *ar);
#endif
