/* What the worker models share inside workers/: the per-worker runtime
 * (signals, drain flag, idle-point duties) set up by worker.c. */
#ifndef DROVER_WORKER_PRIV_H
#define DROVER_WORKER_PRIV_H

#include <stdatomic.h>
#include <stdint.h>

#include "workers/http/http_conn.h"
#include "workers/worker.h"

struct worker_rt {
	const struct worker_args *args;
	struct conn_env env;
	uint64_t max_requests; /* 0: unlimited; jitter already added */
	uint64_t next_heap_sample_ns;
	uint64_t next_ppid_check_ns;
	const char *model; /* "sync", "thread", "event" */
};

/* Set by SIGTERM, a drain command or max_requests: stop accepting. */
extern atomic_int worker_draining;

/* Duties at an idle point of the worker (between requests): heartbeat,
 * master's commands, heap figures, max_requests, parent still alive.
 * Cheap enough to call per request. */
void worker_idle_point(struct worker_rt *rt);
/* max_requests reached: log it once and start draining. */
void worker_check_max_requests(struct worker_rt *rt);
/* Poll timeout that keeps the heartbeat fresh well within conf->timeout. */
int worker_tick_ms(const struct drover_conf *conf);

/* The models; *_model_ready says whether the model is implemented. */
int sync_run(struct worker_rt *rt);
int thread_run(struct worker_rt *rt);
int event_run(struct worker_rt *rt);
extern const int thread_model_ready, event_model_ready;
#endif
