/* Memory recycling, the act side (see recycler.h): the verdict is recycle.c's,
 * the processes are pool.c's; this file only wires them and logs, once. */
#include "supervisor/recycler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/log.h"

#define MB (1024.0 * 1024.0)
#define JITTER_MAX_NS 1000000000ull /* spacing between two recycle starts: 0..1 s */

struct recycler *recycler_new(void)
{
	struct recycler *r = calloc(1, sizeof(*r));
	if (r)
		r->seed = (unsigned)getpid();
	return r;
}

void recycler_free(struct recycler *r)
{
	free(r);
}

static struct recycle_point point_of(const struct worker_view *v, uint64_t now)
{
	return (struct recycle_point){
		.t_ns = now,
		.rss = v->p.smaps.anonymous_kb * 1024,
		.in_use = v->heap_in_use + v->heap_mmap,
		.free = v->heap_free,
		.py_arena = v->py_arena,
		.py_blocks = v->py_blocks,
		.trims = v->trims,
		.requests = v->requests,
	};
}

/* Old workers out for a memory recycle (or any replace) right now: waiting
 * for their successor, or draining (unless only_waiting). */
static unsigned recycles_in_progress(const struct pool *p, bool only_waiting)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		n += p->w[i].pid && p->w[i].replace_ns && !(only_waiting && p->w[i].stop_ns);
	return n;
}

/* The one way a worker is recycled from here: pool_replace (successor
 * accepting first), at most recycle_concurrency at once, starts spaced by a
 * random 0..1 s.  False: not now, try at a later tick. */
static bool start_recycle(struct recycler *r, struct pool *p, struct worker_rec *w,
			  const struct drover_conf *c, enum recycle_why reason, const char *why,
			  uint64_t now)
{
	/* A worker that served max_requests no longer accepts: spacing its
	 * replacement out, or waiting for another's drain to end, only leaves
	 * the pool one short for longer. */
	bool idle = atomic_load_explicit(&w->slot->recycle_wanted, memory_order_acquire) ==
		    SB_WANT_NOW;
	if ((now < r->next_start_ns && !idle) ||
	    recycles_in_progress(p, idle) >= (unsigned)c->recycle_concurrency)
		return false; /* the whole pool never goes at once */
	log_warn("worker %u (pid %d): recycling %s", w->no, (int)w->pid, why);
	pool_replace(p, w->pid, now);
	r->started[reason]++;
	r->next_start_ns = now + (uint64_t)rand_r(&r->seed) % JITTER_MAX_NS;
	return true;
}

static void recycle_memory(struct recycler *r, struct pool *p, struct worker_rec *w,
			   const struct recycle_figures *f, const struct drover_conf *c,
			   struct recycle_track *t, uint64_t now)
{
	char why[160];
	bool hard = c->max_rss && (uint64_t)f->base_rss + (uint64_t)f->rss_growth > c->max_rss;
	snprintf(why, sizeof(why), "(%s), RSS %+.0f MB with %+.0f MB in use, over %s",
		 recycle_verdict_name(f->verdict), f->rss_growth / MB, f->in_use_growth / MB,
		 hard ? "max_rss" : "rss_growth_limit");
	if (start_recycle(r, p, w, c, RECYCLE_WHY_MEMORY, why, now))
		t->recycling = true;
}

static void act(struct recycler *r, struct pool *p, struct worker_rec *w,
		struct recycle_track *t, const struct recycle_figures *f,
		const struct drover_conf *c, enum recycle_action a, uint64_t now)
{
	switch (a) {
	case RA_NONE: return;
	case RA_TRIM:
		/* SB_CMD_TRIM runs at the worker's next idle point: never mid-request. */
		pool_command(p, w, SB_CMD_TRIM);
		return;
	case RA_TRIMMED:
		/* The figures that called for the trim, then what it gave back. */
		log_warn("worker %u (pid %d): heap fragmented, RSS %+.0f MB with %+.0f MB in use; "
			 "malloc_trim returned %.0f MB", w->no, (int)w->pid, t->trim_rss_growth / MB,
			 t->trim_in_use_growth / MB,
			 t->trim_returned > 0 ? t->trim_returned / MB : 0.0); /* grew since: none */
		return;
	case RA_RECYCLE: recycle_memory(r, p, w, f, c, t, now); return;
	}
}

static void publish(struct worker_view *v, const struct recycle_track *t,
		    const struct recycle_figures *f)
{
	v->mem.verdict = (int)f->verdict;
	v->mem.base_rss = f->base_rss;
	v->mem.rss_growth = f->rss_growth;
	v->mem.in_use_growth = f->in_use_growth;
	v->mem.free_growth = f->free_growth;
	v->mem.trim_returned = t->trim_returned;
}

/* max_age plus this worker's own jitter (gunicorn's max_requests_jitter idea,
 * applied to time), so that workers started together do not leave together. */
static uint64_t age_limit(struct recycler *r, const struct drover_conf *c)
{
	if (c->max_age <= 0)
		return 0;
	double j = c->max_age_jitter > 0 ? c->max_age_jitter * rand_r(&r->seed) / RAND_MAX : 0;
	return (uint64_t)((c->max_age + j) * 1e9);
}

static bool aged(struct recycler *r, size_t i, const struct worker_rec *w, uint64_t now)
{
	return r->age_limit_ns[i] && now > w->spawned_ns + r->age_limit_ns[i];
}

/* The worker asked: max_requests (its budget nearly or fully spent). */
static bool wants_recycle(const struct worker_rec *w)
{
	return atomic_load_explicit(&w->slot->recycle_wanted, memory_order_acquire) != SB_WANT_NONE;
}

/* ctl recycle all, max_requests or max_age: the same graceful path, queued
 * until a recycle slot is free. */
static void recycle_asked(struct recycler *r, struct pool *p, struct worker_rec *w,
			  const struct drover_conf *c, size_t i, uint64_t now)
{
	char why[64];
	enum recycle_why reason = r->queued[i] == w->pid ? RECYCLE_WHY_REQUESTED
				  : wants_recycle(w) ? RECYCLE_WHY_MAX_REQUESTS
						     : RECYCLE_WHY_MAX_AGE;
	if (reason == RECYCLE_WHY_REQUESTED)
		snprintf(why, sizeof(why), "(requested)");
	else if (reason == RECYCLE_WHY_MAX_REQUESTS)
		snprintf(why, sizeof(why), "(max_requests, %llu served)",
			 (unsigned long long)sb_load(&w->slot->requests));
	else
		snprintf(why, sizeof(why), "(max_age, %.0f s old)",
			 (double)(now - w->spawned_ns) / 1e9);
	if (start_recycle(r, p, w, c, reason, why, now)) {
		r->queued[i] = 0;
		r->t[i].recycling = true;
	}
}

void recycler_tick(struct recycler *r, struct pool *p, struct sampler *s,
		   const struct drover_conf *c, bool act_on, uint64_t now)
{
	/* A point per smaps read of the worker (the sampler spreads them over
	 * smaps_interval): between two, RSS is the same old figure. */
	r->last_smaps_due = s->next_smaps_ns;
	struct recycle_limits lim = {
		.growth_limit = c->rss_growth_limit,
		.max_rss = c->max_rss,
		.warmup_s = c->recycle_warmup,
	};
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_rec *w = &p->w[i];
		struct worker_view *v = &s->w[i];
		struct recycle_track *t = &r->t[i];
		if (!w->pid || v->p.pid != w->pid) {
			t->pid = 0;
			continue;
		}
		if (t->pid != w->pid) {
			recycle_track_reset(t, w->pid);
			t->warmup_requests = (uint64_t)c->recycle_warmup_requests;
			r->age_limit_ns[i] = age_limit(r, c);
		}
		bool read = v->p.smaps_reads != r->smaps_seen[i];
		r->smaps_seen[i] = v->p.smaps_reads;
		if (read && v->p.has_smaps && v->sb_state != SB_BOOTING) {
			struct recycle_point pt = point_of(v, now);
			recycle_observe(t, &pt, w->spawned_ns, lim.warmup_s);
		}
		struct recycle_figures f = recycle_judge(t, &lim);
		publish(v, t, &f);
		if (!act_on || w->stop_ns || w->replace_ns || !w->booted)
			continue;
		if (r->queued[i] == w->pid || wants_recycle(w) || aged(r, i, w, now))
			recycle_asked(r, p, w, c, i, now);
		else
			act(r, p, w, t, &f, c, recycle_decide(t, &f, &lim, now), now);
	}
	for (int k = 0; k < RECYCLE_WHY_N; k++) /* for status and metrics */
		s->master.recycled[k] = r->started[k];
}

unsigned recycler_recycle_all(struct recycler *r, const struct pool *p)
{
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_rec *w = &p->w[i];
		/* by pid: a worker not yet seen by a tick (just booted) counts too */
		if (w->pid && !w->stop_ns && !w->replace_ns && w->generation == p->generation) {
			r->queued[i] = w->pid;
			n++;
		}
	}
	return n;
}
