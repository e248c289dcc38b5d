/* The sampler: fills sample.h's data from the scoreboard and /proc.  It
 * measures only; nothing here decides or acts.  Readers are thin: they hand
 * the text to sample_parse.c's pure parsers. */
#ifndef DROVER_SAMPLER_H
#define DROVER_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "supervisor/sample.h"

struct pool;
struct worker_rec;
struct listeners;

/* A zeroed sampler that knows its cgroup; NULL (errno) on failure. */
struct sampler *sampler_new(void);
void sampler_free(struct sampler *s);
/* The master's facts (state names the master's state) and each worker's
 * identity and scoreboard figures, without reading /proc: cheap, for every
 * tick and for renderers between passes. */
void sampler_refresh(struct sampler *s, const struct pool *p, const char *state,
		     const struct drover_conf *c, uint64_t now);
/* A whole pass: refresh, then /proc of every worker and the master, the host,
 * the listeners' queues.  Sets next_pass_ns from c->sample_interval. */
void sampler_pass(struct sampler *s, const struct pool *p, const struct listeners *ls,
		  const char *state, const struct drover_conf *c, uint64_t now);
/* A worker is being reaped: keep its last scoreboard counters (before the
 * slot is released) for the pool totals. */
void sampler_worker_exited(struct sampler *s, const struct pool *p, const struct worker_rec *w);

/* Thin readers (exposed for tests): 0 or -errno. */
/* One process, every thread's files: the full /proc read (doctor --attach). */
int sample_read_proc(pid_t pid, struct proc_view *v, bool smaps, char *buf, size_t cap);
struct sample_opts {
	bool smaps; /* read smaps_rollup */
	bool smaps_missing; /* ... or if there is no smaps read yet (a new process) */
	bool smaps_if_moved; /* ... or if RSS moved since the last smaps read */
	/* Non-NULL: a multi-threaded process's switch and CPU totals come from
	 * taskstats, and its per-thread files are read only if detail is set.
	 * A taskstats error goes to *ts_error (the /proc way is used instead). */
	struct taskstats_sock *ts;
	bool detail;
	int *ts_error;
};
int sample_read_proc_opts(pid_t pid, struct proc_view *v, const struct sample_opts *o,
			  char *buf, size_t cap);
int sample_read_host(struct host_view *h, char *buf, size_t cap);
/* Point h at the cpu controller files of pid's cgroup (/proc/PID/cgroup;
 * pid 0: this process), read by sample_read_host from then on.  Returns
 * the cgroup version, 1 or 2, or 0 if none was found. */
int sample_find_cgroup(struct host_view *h, pid_t pid, char *buf, size_t cap);
/* Rates between the last two sample_read_host() calls on h, el seconds
 * apart: PSI shares, cgroup throttling, swap pages per second. */
void sample_host_rates(struct host_view *h, double el);
#endif
