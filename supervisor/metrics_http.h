/* The optional HTTP metrics listener (metrics_bind): GET /metrics
 * (Prometheus text) and GET /status.json, on the master's loop. */
#ifndef DROVER_METRICS_HTTP_H
#define DROVER_METRICS_HTTP_H

struct arbiter;
struct metrics_http;

/* NULL if metrics_bind is empty or cannot be bound (logged: the master runs
 * without it). */
struct metrics_http *metrics_http_start(struct arbiter *ar);
void metrics_http_stop(struct metrics_http *m);
/* Its listening socket (passed on by a USR2 upgrade), -1 if none. */
int metrics_http_fd(const struct metrics_http *m);
#endif
