/* The act side of memory recycling (issue 12): feeds each worker's memory
 * figures to the pure verdict (recycle.c) once per smaps read, publishes the
 * verdict in the sample for status and metrics, and applies the decision
 * through pool.c: a trim command, or a graceful replace, at most
 * recycle_concurrency at a time. */
#ifndef DROVER_RECYCLER_H
#define DROVER_RECYCLER_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "supervisor/pool.h"
#include "supervisor/recycle.h"
#include "supervisor/sample.h"

struct recycler {
	uint64_t started[RECYCLE_WHY_N]; /* graceful replaces begun, by reason */
	struct recycle_track t[SB_MAX_SLOTS]; /* parallel to pool.w[] */
	uint64_t last_smaps_due; /* the sampler's next_smaps_ns at the last tick */
	/* each worker's smaps_rollup read count at the last tick: the sampler
	 * spreads the reads over smaps_interval, a point per worker's own read */
	uint64_t smaps_seen[SB_MAX_SLOTS];
	uint64_t next_start_ns; /* jitter: no recycle starts before this */
	uint64_t age_limit_ns[SB_MAX_SLOTS]; /* max_age + this worker's jitter; 0: none */
	pid_t queued[SB_MAX_SLOTS]; /* recycle asked for this pid (ctl recycle all, URG) */
	unsigned seed;
};

struct recycler *recycler_new(void); /* NULL without memory */
void recycler_free(struct recycler *r);
/* One tick (now: monotonic ns).  act: the master runs normally (no reload
 * or stop in progress); otherwise only the verdicts are computed. */
void recycler_tick(struct recycler *r, struct pool *p, struct sampler *s,
		   const struct drover_conf *c, bool act, uint64_t now);
/* Recycle every live worker of the current generation gracefully, at most
 * recycle_concurrency at a time (ctl recycle all).  Returns how many were
 * queued. */
unsigned recycler_recycle_all(struct recycler *r, const struct pool *p);
#endif
