/* Memory verdicts and the recycle decision: pure functions over one worker's
 * memory series (RSS from smaps_rollup, malloc's in-use and free heap from
 * mallinfo2, pymalloc's arenas for Python), the limits and the time.  No I/O,
 * no clock, no pool: the arbiter's tick feeds points in and applies the
 * returned action through pool.c (trim command, graceful replace). */
#ifndef DROVER_RECYCLE_H
#define DROVER_RECYCLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define RECYCLE_SERIES 12 /* points kept per worker (one per smaps read) */
#define RECYCLE_HEAP_POINTS 3 /* the verdict most of these last points give */
#define RECYCLE_REF_BYTES (64ull << 20) /* "significant growth" with no limit set */
#define RECYCLE_RETRIM_NS (60ull * 1000000000ull) /* at most one trim a minute */

enum recycle_verdict {
	RV_WARMING, /* no baseline yet (recycle_warmup not over) */
	RV_NORMAL,
	RV_SETTLING, /* still growing, but slower and slower: a plateau ahead */
	RV_FRAGMENTATION, /* RSS grew, the heap in use did not: free heap holds it */
	RV_LEAK, /* the heap in use grew with RSS and keeps growing */
};

/* One observation of a worker, bytes. */
struct recycle_point {
	uint64_t t_ns;
	uint64_t rss; /* Anonymous (smaps_rollup): the worker's own memory */
	uint64_t in_use; /* mallinfo2 uordblks + hblkhd */
	uint64_t free; /* mallinfo2 fordblks */
	uint64_t py_arena, py_blocks; /* pymalloc, 0 for C */
	uint64_t trims; /* the worker's malloc_trim count */
	uint64_t requests; /* served so far (scoreboard) */
};

enum recycle_action {
	RA_NONE,
	RA_TRIM, /* ask for malloc_trim(0) at the next idle point */
	RA_TRIMMED, /* a trim's effect is measured: log it (trim_returned) */
	RA_RECYCLE, /* replace the worker gracefully */
};

struct recycle_track {
	pid_t pid; /* 0: unused */
	uint64_t warmup_requests; /* the baseline also once this many served; 0: time only */
	bool has_base;
	struct recycle_point base;
	double py_bytes_per_block; /* pymalloc arena bytes per block at the baseline */
	struct recycle_point pts[RECYCLE_SERIES];
	unsigned n, pos; /* points held; next write index */
	/* the cure */
	uint64_t trim_ns; /* a trim asked at this time, effect not yet seen; 0: none */
	uint64_t trim_rss, trim_count; /* RSS and trim counter when it was asked */
	uint64_t last_trim_ns;
	int64_t trim_returned; /* bytes the last trim gave back (RSS before - after) */
	int64_t trim_rss_growth, trim_in_use_growth; /* the figures that asked for it */
	bool recycling; /* RA_RECYCLE returned: do not ask again */
};

struct recycle_limits {
	uint64_t growth_limit; /* rss_growth_limit, bytes; 0: off */
	uint64_t max_rss; /* bytes; 0: off */
	double warmup_s; /* recycle_warmup */
};

struct recycle_figures {
	enum recycle_verdict verdict;
	uint64_t base_rss; /* 0 without a baseline */
	int64_t rss_growth, in_use_growth, free_growth; /* vs the baseline, bytes */
};

/* Start tracking pid (forgets what was held). */
void recycle_track_reset(struct recycle_track *t, pid_t pid);
/* Add a point; the baseline is the first point at least warmup_s after
 * spawned_ns (monotonic ns), or with t->warmup_requests served, whichever
 * comes first.  A point older than the last one is ignored. */
void recycle_observe(struct recycle_track *t, const struct recycle_point *p,
		     uint64_t spawned_ns, double warmup_s);
/* The verdict over the series (see README "Memory verdicts"). */
struct recycle_figures recycle_judge(const struct recycle_track *t,
				     const struct recycle_limits *lim);
/* What to do now; updates the cure state in t.  Acts only with a limit set. */
enum recycle_action recycle_decide(struct recycle_track *t, const struct recycle_figures *f,
				   const struct recycle_limits *lim, uint64_t now);
const char *recycle_verdict_name(enum recycle_verdict v);
#endif
