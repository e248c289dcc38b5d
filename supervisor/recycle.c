/* Memory verdicts (see recycle.h and the README's "Memory verdicts"): tell a
 * fragmented heap from a leak from a heap still settling, and pick the
 * cheapest cure (malloc_trim) before a graceful recycle. */
#include "supervisor/recycle.h"

#include <string.h>

#define NOISE_MIN_BYTES (2ull << 20)

void recycle_track_reset(struct recycle_track *t, pid_t pid)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
}

static const struct recycle_point *nth_last(const struct recycle_track *t, unsigned k)
{
	/* k = 0: the newest point; k < t->n */
	return &t->pts[(t->pos + RECYCLE_SERIES - 1 - k) % RECYCLE_SERIES];
}

static double bytes_per_block(const struct recycle_point *b)
{
	/* pymalloc blocks are 8..512 bytes; the baseline's arena bytes per block
	 * is the density we assume for blocks allocated since (a sparse
	 * baseline overestimates it, hence the bounds). */
	if (!b->py_blocks)
		return 64;
	double d = (double)b->py_arena / (double)b->py_blocks;
	return d < 16 ? 16 : d > 512 ? 512 : d;
}

void recycle_observe(struct recycle_track *t, const struct recycle_point *p,
		     uint64_t spawned_ns, double warmup_s)
{
	if (t->n && p->t_ns <= nth_last(t, 0)->t_ns)
		return;
	t->pts[t->pos] = *p;
	t->pos = (t->pos + 1) % RECYCLE_SERIES;
	if (t->n < RECYCLE_SERIES)
		t->n++;
	bool warm = p->t_ns >= spawned_ns + (uint64_t)(warmup_s * 1e9) ||
		    (t->warmup_requests && p->requests >= t->warmup_requests);
	if (!t->has_base && p->rss && warm) {
		t->has_base = true;
		t->base = *p;
		t->py_bytes_per_block = bytes_per_block(p);
	}
}

/* Heap in use and free, pymalloc included: its blocks at the baseline's
 * density are in use, the rest of its arenas is free. */
static double in_use_of(const struct recycle_track *t, const struct recycle_point *p)
{
	return (double)p->in_use + (double)p->py_blocks * t->py_bytes_per_block;
}

static double free_of(const struct recycle_track *t, const struct recycle_point *p)
{
	double py_free = (double)p->py_arena - (double)p->py_blocks * t->py_bytes_per_block;
	return (double)p->free + (py_free > 0 ? py_free : 0);
}

/* Still growing, but the newer half of the window grew less than half as
 * much as the older half: the curve bends toward a plateau. */
static bool settling(const struct recycle_track *t, double noise)
{
	if (t->n < 4)
		return false;
	unsigned half = t->n / 2;
	double old = (double)nth_last(t, t->n - 1)->rss, mid = (double)nth_last(t, half)->rss;
	double now = (double)nth_last(t, 0)->rss;
	double d1 = mid - old, d2 = now - mid;
	return d1 > noise && d2 >= 0 && d2 < d1 / 2;
}

/* The verdict as of the k-th newest point (k = 0: the newest), with the
 * figures of that point against the baseline. */
static struct recycle_figures judge_at(const struct recycle_track *t,
				       const struct recycle_limits *lim, unsigned k)
{
	struct recycle_figures f = {RV_NORMAL, 0, 0, 0, 0};
	const struct recycle_point *b = &t->base, *last = nth_last(t, k);
	const struct recycle_point *first = nth_last(t, t->n - 1);
	f.base_rss = b->rss;
	double g = (double)last->rss - (double)b->rss;
	double iu = in_use_of(t, last) - in_use_of(t, b);
	double fr = free_of(t, last) - free_of(t, b);
	f.rss_growth = (int64_t)g;
	f.in_use_growth = (int64_t)iu;
	f.free_growth = (int64_t)fr;
	double noise = (double)b->rss / 50;
	if (noise < NOISE_MIN_BYTES)
		noise = NOISE_MIN_BYTES;
	double ref = lim->growth_limit ? (double)lim->growth_limit : (double)RECYCLE_REF_BYTES;
	/* Leak: in-use memory carries the growth and still rises in the window
	 * (a cache that filled once and stopped is not a leak). */
	double iu_window = in_use_of(t, last) - in_use_of(t, first);
	if (g > noise && iu > noise && 2 * iu >= g && iu_window > noise / 2)
		f.verdict = RV_LEAK;
	else if (g >= ref && 4 * iu < g && (fr > 0 || g - iu > ref / 2))
		f.verdict = RV_FRAGMENTATION;
	else if (k == 0 && settling(t, noise))
		f.verdict = RV_SETTLING;
	return f;
}

/* The newest point's figures; its verdict unless most of the last
 * RECYCLE_HEAP_POINTS points agree on another (ties: the newest).  The thread
 * model samples its heap while other threads serve requests, so one point may
 * hold a request's temporary objects; a leak is in every point, a request's
 * peak in one. */
struct recycle_figures recycle_judge(const struct recycle_track *t,
				     const struct recycle_limits *lim)
{
	struct recycle_figures f = {RV_WARMING, 0, 0, 0, 0};
	if (!t->has_base || !t->n)
		return f;
	f = judge_at(t, lim, 0);
	unsigned votes[RV_LEAK + 1] = {0};
	unsigned n = t->n < RECYCLE_HEAP_POINTS ? t->n : RECYCLE_HEAP_POINTS;
	enum recycle_verdict vk[RECYCLE_HEAP_POINTS];
	for (unsigned k = 0; k < n; k++) {
		vk[k] = k ? judge_at(t, lim, k).verdict : f.verdict;
		if (vk[k] == RV_SETTLING)
			vk[k] = RV_NORMAL;
		votes[vk[k]]++;
	}
	/* settling is a kind of normal (only the newest point is tested for it) */
	enum recycle_verdict mine = f.verdict == RV_SETTLING ? RV_NORMAL : f.verdict;
	for (unsigned k = 1; k < n; k++)
		if (votes[vk[k]] > votes[mine] && vk[k] != mine)
			f.verdict = mine = vk[k];
	return f;
}

/* All of the last RECYCLE_HEAP_POINTS points over the growth limit: not one
 * sample caught mid-burst. */
static bool over_for_a_while(const struct recycle_track *t, uint64_t limit)
{
	if (t->n < RECYCLE_HEAP_POINTS)
		return false;
	for (unsigned k = 0; k < RECYCLE_HEAP_POINTS; k++)
		if (nth_last(t, k)->rss <= t->base.rss + limit)
			return false;
	return true;
}

/* A trim was asked: its effect shows at the first point whose trim counter
 * moved (the sampler reads smaps after the scoreboard, so that RSS is after
 * the trim). */
static enum recycle_action trim_pending(struct recycle_track *t, uint64_t now)
{
	const struct recycle_point *last = nth_last(t, 0);
	if (last->trims > t->trim_count) {
		t->trim_returned = (int64_t)t->trim_rss - (int64_t)last->rss;
		t->trim_ns = 0;
		return RA_TRIMMED;
	}
	if (now - t->trim_ns > RECYCLE_RETRIM_NS / 2) {
		t->trim_ns = 0; /* never idle for 30 s: the trim did not happen */
		return RA_NONE;
	}
	return RA_NONE;
}

enum recycle_action recycle_decide(struct recycle_track *t, const struct recycle_figures *f,
				   const struct recycle_limits *lim, uint64_t now)
{
	if ((!lim->growth_limit && !lim->max_rss) || t->recycling || !t->n)
		return RA_NONE;
	if (t->trim_ns)
		return trim_pending(t, now);
	const struct recycle_point *last = nth_last(t, 0);
	if (lim->max_rss && last->rss > lim->max_rss)
		return RA_RECYCLE; /* a hard limit, whatever the verdict */
	if (!lim->growth_limit || f->verdict == RV_WARMING ||
	    f->rss_growth <= (int64_t)lim->growth_limit)
		return RA_NONE;
	if (f->verdict == RV_FRAGMENTATION &&
	    (!t->last_trim_ns || now - t->last_trim_ns > RECYCLE_RETRIM_NS)) {
		t->trim_ns = t->last_trim_ns = now;
		t->trim_rss = last->rss;
		t->trim_count = last->trims;
		t->trim_rss_growth = f->rss_growth;
		t->trim_in_use_growth = f->in_use_growth;
		return RA_TRIM;
	}
	if (f->verdict == RV_FRAGMENTATION || f->verdict == RV_LEAK ||
	    over_for_a_while(t, lim->growth_limit))
		return RA_RECYCLE; /* over the limit, and a trim did not bring it under */
	return RA_NONE; /* a verdict still forming: a few more points */
}

const char *recycle_verdict_name(enum recycle_verdict v)
{
	static const char *const names[] = {
		[RV_WARMING] = "warming", [RV_NORMAL] = "normal", [RV_SETTLING] = "settling",
		[RV_FRAGMENTATION] = "fragmentation", [RV_LEAK] = "leak",
	};
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}
