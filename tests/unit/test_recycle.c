/* Unit tests of supervisor/recycle.c: memory verdicts and the cure over
 * synthetic series (no process, no clock): fragmenting, leaking, settling,
 * noisy, a Python heap fragmented across pymalloc arenas, no baseline yet. */
#include "check.h"
#include "supervisor/recycle.h"

#define S 1000000000ull
#define M (1ull << 20)

static const struct recycle_limits lim64 = {.growth_limit = 64 * M, .warmup_s = 10};

/* Feed points at 1 s steps from t = 10 s (warm-up over at the first). */
static void feed(struct recycle_track *t, unsigned n, const uint64_t *rss, const uint64_t *in_use,
		 const uint64_t *fre)
{
	for (unsigned i = 0; i < n; i++) {
		struct recycle_point p = {.t_ns = (10 + i) * S, .rss = rss[i], .in_use = in_use[i],
					  .free = fre[i]};
		recycle_observe(t, &p, 0, 10);
	}
}

static void no_baseline_is_warming(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	struct recycle_point p = {.t_ns = 5 * S, .rss = 300 * M, .in_use = 290 * M};
	recycle_observe(&t, &p, 0, 10); /* 5 s < warm-up 10 s */
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_WARMING && f.base_rss == 0);
	CHECK(recycle_decide(&t, &f, &lim64, 5 * S) == RA_NONE);
	CHECK(!t.has_base);
}

/* recycle_warmup_requests (issue 12 gap h): the baseline at whichever comes
 * first, the time or the request count. */
static void warmup_by_requests(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	t.warmup_requests = 500;
	struct recycle_point p = {.t_ns = 2 * S, .rss = 100 * M, .requests = 499};
	recycle_observe(&t, &p, 0, 10);
	CHECK(!t.has_base); /* neither 10 s nor 500 requests */
	p = (struct recycle_point){.t_ns = 3 * S, .rss = 110 * M, .requests = 500};
	recycle_observe(&t, &p, 0, 10);
	CHECK(t.has_base && t.base.rss == 110 * M); /* 500 requests before 10 s */
	/* the time still counts when the requests are slow to come */
	recycle_track_reset(&t, 8);
	t.warmup_requests = 500;
	p = (struct recycle_point){.t_ns = 10 * S, .rss = 120 * M, .requests = 3};
	recycle_observe(&t, &p, 0, 10);
	CHECK(t.has_base && t.base.rss == 120 * M);
}

static void fragmenting(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	uint64_t rss[] = {20 * M, 60 * M, 90 * M, 100 * M};
	uint64_t iu[] = {10 * M, 11 * M, 11 * M, 12 * M};
	uint64_t fr[] = {1 * M, 40 * M, 70 * M, 80 * M};
	feed(&t, 4, rss, iu, fr);
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_FRAGMENTATION);
	CHECK(f.rss_growth == (int64_t)(80 * M) && f.in_use_growth == (int64_t)(2 * M));
	/* The cure, cheapest first: trim; then measure once the worker did it. */
	CHECK(recycle_decide(&t, &f, &lim64, 13 * S) == RA_TRIM);
	CHECK(recycle_decide(&t, &f, &lim64, 13 * S) == RA_NONE); /* not done yet */
	struct recycle_point after = {.t_ns = 14 * S, .rss = 95 * M, .in_use = 12 * M,
				      .free = 80 * M, .trims = 1};
	recycle_observe(&t, &after, 0, 10);
	f = recycle_judge(&t, &lim64);
	CHECK(recycle_decide(&t, &f, &lim64, 14 * S) == RA_TRIMMED);
	CHECK(t.trim_returned == (int64_t)(5 * M));
	/* Still over the limit: recycle, not another trim. */
	CHECK(recycle_decide(&t, &f, &lim64, 15 * S) == RA_RECYCLE);
}

static void trim_that_works_avoids_recycle(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	uint64_t rss[] = {20 * M, 100 * M};
	uint64_t iu[] = {10 * M, 10 * M};
	uint64_t fr[] = {1 * M, 80 * M};
	feed(&t, 2, rss, iu, fr);
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(recycle_decide(&t, &f, &lim64, 12 * S) == RA_TRIM);
	struct recycle_point after = {.t_ns = 13 * S, .rss = 25 * M, .in_use = 10 * M,
				      .free = 80 * M, .trims = 1};
	recycle_observe(&t, &after, 0, 10);
	f = recycle_judge(&t, &lim64);
	CHECK(recycle_decide(&t, &f, &lim64, 13 * S) == RA_TRIMMED);
	CHECK(t.trim_returned == (int64_t)(75 * M));
	CHECK(recycle_decide(&t, &f, &lim64, 14 * S) == RA_NONE);
}

static void leaking(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	uint64_t rss[] = {20 * M, 40 * M, 60 * M, 80 * M, 100 * M};
	uint64_t iu[] = {10 * M, 30 * M, 50 * M, 70 * M, 90 * M};
	uint64_t fr[] = {1 * M, 1 * M, 1 * M, 1 * M, 1 * M};
	feed(&t, 5, rss, iu, fr);
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_LEAK);
	/* No trim for a leak: straight to the recycle once over the limit. */
	CHECK(recycle_decide(&t, &f, &lim64, 15 * S) == RA_RECYCLE);
	/* Only max_rss set: the hard limit. */
	struct recycle_limits hard = {.max_rss = 90 * M, .warmup_s = 10};
	struct recycle_track u = t;
	f = recycle_judge(&u, &hard);
	CHECK(f.verdict == RV_LEAK);
	CHECK(recycle_decide(&u, &f, &hard, 15 * S) == RA_RECYCLE);
}

static void settling(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	/* +16, +8, +4, +2, +1, +0.5 MB: a curve bending to a plateau */
	uint64_t rss[] = {20 * M, 36 * M, 44 * M, 48 * M, 50 * M, 51 * M, 51 * M + M / 2};
	uint64_t iu[] = {10 * M, 14 * M, 15 * M, 15 * M, 15 * M, 15 * M, 15 * M};
	uint64_t fr[] = {1 * M, 12 * M, 19 * M, 23 * M, 25 * M, 26 * M, 26 * M};
	feed(&t, 7, rss, iu, fr);
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_SETTLING);
	CHECK(recycle_decide(&t, &f, &lim64, 17 * S) == RA_NONE);
}

static void noisy_is_normal(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	uint64_t rss[] = {200 * M, 201 * M, 199 * M, 202 * M, 200 * M, 201 * M};
	uint64_t iu[] = {150 * M, 151 * M, 149 * M, 152 * M, 150 * M, 151 * M};
	uint64_t fr[] = {5 * M, 5 * M, 6 * M, 4 * M, 5 * M, 5 * M};
	feed(&t, 6, rss, iu, fr);
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_NORMAL);
	CHECK(recycle_decide(&t, &f, &lim64, 16 * S) == RA_NONE);
}

static void limits_off_never_act(void)
{
	struct recycle_limits off = {.warmup_s = 10};
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	uint64_t rss[] = {20 * M, 300 * M};
	uint64_t iu[] = {10 * M, 10 * M};
	uint64_t fr[] = {1 * M, 280 * M};
	feed(&t, 2, rss, iu, fr);
	struct recycle_figures f = recycle_judge(&t, &off);
	CHECK(f.verdict == RV_FRAGMENTATION); /* computed anyway */
	CHECK(recycle_decide(&t, &f, &off, 12 * S) == RA_NONE);
}

/* pymalloc: arenas grew, blocks in use did not -> fragmentation, though
 * malloc's own counters are flat; blocks growing with them -> a leak. */
static void python_arenas(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	struct recycle_point p0 = {.t_ns = 10 * S, .rss = 30 * M, .in_use = 5 * M, .free = M,
				   .py_arena = 8 * M, .py_blocks = 100000};
	struct recycle_point p1 = p0;
	p1.t_ns = 11 * S;
	p1.rss = 110 * M;
	p1.py_arena = 88 * M;
	p1.py_blocks = 110000;
	recycle_observe(&t, &p0, 0, 10);
	for (int i = 0; i < 3; i++, p1.t_ns += S) /* the heap figures must hold 3 points */
		recycle_observe(&t, &p1, 0, 10);
	struct recycle_figures f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_FRAGMENTATION);
	CHECK(f.free_growth > (int64_t)(70 * M));

	recycle_track_reset(&t, 7);
	p1.py_blocks = 100000 + 80 * M / 128; /* 128-byte objects filling the arenas */
	p1.t_ns = 11 * S;
	recycle_observe(&t, &p0, 0, 10);
	recycle_observe(&t, &p1, 0, 10);
	for (int i = 1; i <= 3; i++) { /* still growing */
		struct recycle_point p2 = p1;
		p2.t_ns = (11 + (uint64_t)i) * S;
		p2.rss = p1.rss + (uint64_t)i * 40 * M;
		p2.py_arena = p1.py_arena + (uint64_t)i * 40 * M;
		p2.py_blocks = p1.py_blocks + (uint64_t)i * 40 * M / 64; /* 64-byte objects */
		recycle_observe(&t, &p2, 0, 10);
	}
	f = recycle_judge(&t, &lim64);
	CHECK(f.verdict == RV_LEAK);
}

/* One point holding a request's temporary objects (thread model) is not a
 * leak: the verdict is the one most of the last three points give. */
static void transient_peak_not_leak(void)
{
	struct recycle_track t;
	recycle_track_reset(&t, 7);
	uint64_t rss[] = {20 * M, 100 * M, 100 * M, 100 * M};
	uint64_t iu[] = {10 * M, 11 * M, 70 * M, 11 * M};
	uint64_t fr[] = {1 * M, 80 * M, 20 * M, 80 * M};
	feed(&t, 4, rss, iu, fr);
	CHECK(recycle_judge(&t, &lim64).verdict == RV_FRAGMENTATION);
}

int main(void)
{
	RUN(no_baseline_is_warming);
	RUN(warmup_by_requests);
	RUN(fragmenting);
	RUN(trim_that_works_avoids_recycle);
	RUN(leaking);
	RUN(settling);
	RUN(noisy_is_normal);
	RUN(limits_off_never_act);
	RUN(python_arenas);
	RUN(transient_peak_not_leak);
	return check_summary();
}
