/* The optional HTTP metrics listener (metrics_bind): GET /metrics
 * (Prometheus text) and GET /status.json, on the master's loop. */
#ifndef DROVER_METRICS_HTTP_H
#define DROVER_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct arbiter;
struct metrics_http;

/* NULL if metrics_bind is empty or cannot be bound (logged: the master runs
 * without it). */
struct metrics_http *metrics_http_start(struct arbiter *ar);
void metrics_http_stop(struct metrics_http *m);

/* One request's head as the listener parses it (pure, for tests and the
 * fuzzer: tests/fuzz/fuzz_metrics_http.c). */
enum metrics_route {
	MR_MORE, /* no whole head yet */
	MR_CLOSE, /* the peer gave up before a whole head: close, no answer */
	MR_TEXT, /* a fixed text: status/reason/text (an error, or the index page) */
	MR_METRICS, /* GET /metrics */
	MR_STATUS, /* GET /status.json */
};
struct metrics_req {
	enum metrics_route route;
	int status;
	const char *reason, *text; /* static strings */
	bool head; /* HEAD: headers only */
};
/* Parse in[0..inlen) (not NUL-terminated), cap being the input buffer's size
 * (a full buffer without a whole head gets 431) and eof whether the peer shut
 * its side. */
void metrics_http_parse(const char *in, size_t inlen, size_t cap, bool eof, struct metrics_req *r);
/* Its listening socket (passed on by a USR2 upgrade), -1 if none. */
int metrics_http_fd(const struct metrics_http *m);
#endif
