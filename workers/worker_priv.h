/* What the worker models share inside workers/: the per-worker runtime
 * (signals, drain flag, idle-point duties) set up by worker.c. */
#ifndef DROVER_WORKER_PRIV_H
#define DROVER_WORKER_PRIV_H

#include <stdatomic.h>
#include <stdint.h>

#include "workers/http/http_conn.h"
#include "workers/worker.h"

#define WORKER_REPLACE_WAIT_NS (10ull * 1000000000ull) /* see budget_fallback */

struct worker_rt {
	const struct worker_args *args;
	struct conn_env env;
	struct req_budget budget; /* max_requests, jitter added (env.budget) */
	uint64_t next_heap_sample_ns;
	uint64_t next_ppid_check_ns;
	const char *model; /* "sync", "thread", "event", "asgi" */
};

/* Set by SIGTERM, a drain command, a hand-off, or the request that reaches
 * max_requests (http_conn.c): stop accepting. */
extern atomic_int worker_draining;

/* Duties at an idle point of the worker (between requests): heartbeat,
 * master's commands, heap figures, parent still alive.  Cheap enough to
 * call per request. */
void worker_idle_point(struct worker_rt *rt);
/* Poll timeout that keeps the heartbeat fresh well within conf->timeout. */
int worker_tick_ms(const struct drover_conf *conf);

/* The hand-off channel (handoff_recv.c).  Take one connection the master
 * passed, without waiting: the fd (*l its listener), -EAGAIN (none now) or
 * -EPIPE (no channel, or shut).  Taking one starts the drain: the master
 * hands off only to a worker it is stopping. */
int worker_handoff_take(struct worker_rt *rt, const struct worker_listener **l);
/* End of a drain: the master's later sends fail (it picks another worker or
 * answers 503); what is queued can still be taken. */
void worker_handoff_shut(struct worker_rt *rt);

/* The models; *_model_ready says whether the model is implemented. */
int sync_run(struct worker_rt *rt);
int thread_run(struct worker_rt *rt);
int event_run(struct worker_rt *rt);
int asgi_run(struct worker_rt *rt); /* app/asgi_server.c (or asgi-fallback.c) */
extern const int thread_model_ready, event_model_ready, asgi_model_ready;
#endif
