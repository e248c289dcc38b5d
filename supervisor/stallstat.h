/* Stall statistics as the master sees them: each worker's counts copied
 * from its scoreboard slot (the watchdog in the worker writes them), and
 * the pool's, merged by blocking site.  Pure functions over plain data. */
#ifndef DROVER_STALLSTAT_H
#define DROVER_STALLSTAT_H

#include <stdint.h>

#include "workers/scoreboard.h"

#define STALL_POOL_SITES 64 /* sites kept pool-wide; more are merged into "other" */

struct stall_site_view {
	char name[SB_SITE_LEN];
	uint64_t count; /* stalls begun at this site */
	uint64_t total_ns; /* time of the ended ones */
	uint64_t ongoing_ns; /* of the stall in progress here, so far */
};

struct stall_view {
	uint64_t stalls, stall_ns, hist[SB_STALL_BUCKETS];
	uint64_t since_ns; /* stall in progress since, 0: none */
	/* Stalls in progress (not in stalls' times until they end): how many,
	 * and their time so far (per worker, its oldest one; pool: summed). */
	uint32_t ongoing;
	uint64_t ongoing_ns;
	uint32_t recent; /* begun within the last minute */
	unsigned nsites;
	struct stall_site_view sites[STALL_POOL_SITES];
};

/* Read a worker's figures from its slot (acquire loads; names published
 * before the count that covers them); now (monotonic ns) dates the stall in
 * progress. */
void stallstat_read(struct stall_view *v, const struct sb_slot *sl, uint64_t now);
/* Forget the stall in progress (a worker gone: it ended unrecorded). */
void stallstat_end_ongoing(struct stall_view *v);
/* Ended time plus the time so far of those in progress, ns. */
static inline uint64_t stallstat_time(const struct stall_view *v)
{
	return v->stall_ns + v->ongoing_ns;
}
/* acc += x, merging sites by name (the "other" row, and overflow, under "other"). */
void stallstat_add(struct stall_view *acc, const struct stall_view *x);
/* The site with the most stall time (count breaks ties), NULL if none. */
const struct stall_site_view *stallstat_top(const struct stall_view *v);
/* Sites sorted by time (ended + ongoing), then count, most first; returns how many. */
unsigned stallstat_sorted(const struct stall_view *v, const struct stall_site_view **out,
			  unsigned max);
#endif
