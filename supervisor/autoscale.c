/* The autoscaler's decision (see autoscale.h): Little's law over a window of
 * samples, the listen queue, p95, hysteresis, cooldowns and a CPU guard.
 * Pure: time comes in as an argument, the result goes out as data.
 *
 * Why each estimate is taken the way it is:
 *  - lambda is the arrival rate, not the completion rate: a saturated pool
 *    completes what it can while the rest waits in the listen queue, so the
 *    queue's growth over the interval is added (and its shrinking, while a
 *    backlog drains, subtracted: a draining burst is not new demand);
 *  - W (time in service) moves slowly while lambda moves in steps, so lambda
 *    is averaged over one scale_interval and W is the median over the last
 *    AUTOSCALE_W_SAMPLES samples: one huge outlier does not move it;
 *  - growing acts on the last interval, shrinking on the peak of the last
 *    scale_down_cooldown with a margin: a steady load never flaps. */
#include "supervisor/autoscale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void autoscale_window_push(struct autoscale_window *w, const struct autoscale_sample *s)
{
	w->s[w->pos] = *s;
	w->pos = (w->pos + 1) % AUTOSCALE_WINDOW;
	if (w->n < AUTOSCALE_WINDOW)
		w->n++;
}

const struct autoscale_sample *autoscale_window_at(const struct autoscale_window *w, unsigned i)
{
	if (i >= w->n)
		return NULL;
	return &w->s[(w->pos + AUTOSCALE_WINDOW - 1 - i) % AUTOSCALE_WINDOW];
}

/* Arrival rate during sample i: completions plus the queue's growth. */
static double arrivals(const struct autoscale_window *w, unsigned i)
{
	const struct autoscale_sample *s = autoscale_window_at(w, i), *o = autoscale_window_at(w, i + 1);
	double grew = (double)s->queued - (o ? (double)o->queued : 0);
	double l = s->rps + (s->elapsed_s > 0 ? grew / s->elapsed_s : 0);
	return l > 0 ? l : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median time in service (s) over the last samples that completed requests;
 * 0 when none did. */
static double service_time(const struct autoscale_window *w)
{
	double v[AUTOSCALE_W_SAMPLES];
	unsigned n = 0;
	for (unsigned i = 0; i < w->n && n < AUTOSCALE_W_SAMPLES; i++) {
		const struct autoscale_sample *s = autoscale_window_at(w, i);
		if (s->rps > 0 && s->load >= 0)
			v[n++] = s->load / s->rps;
	}
	if (!n)
		return 0;
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The samples of the last span_s seconds (at least the newest one). */
static unsigned recent(const struct autoscale_window *w, double span_s, uint64_t now)
{
	unsigned n = 0;
	uint64_t span = (uint64_t)(span_s * 1e9);
	while (n < w->n) {
		const struct autoscale_sample *s = autoscale_window_at(w, n);
		if (n > 0 && s->t_ns + span <= now)
			break;
		n++;
	}
	return n;
}

struct recent_figures {
	double lambda, el, load, cpu, runq, p95_s, eff, psi, throttled;
};

static void sum_recent(const struct autoscale_window *w, unsigned n, struct recent_figures *r)
{
	*r = (struct recent_figures){.p95_s = NAN, .psi = -1};
	for (unsigned i = 0; i < n; i++) {
		const struct autoscale_sample *s = autoscale_window_at(w, i);
		double el = s->elapsed_s > 0 ? s->elapsed_s : 1e-9;
		r->lambda += arrivals(w, i) * el;
		r->load += s->load * el;
		r->cpu += s->cpu * el;
		r->runq += s->runq * el;
		r->throttled += s->throttled_frac * el;
		r->el += el;
	}
	const struct autoscale_sample *s = autoscale_window_at(w, 0);
	r->lambda /= r->el;
	r->throttled /= r->el;
	r->p95_s = s->p95_s;
	r->eff = s->effective_cpus;
	r->psi = s->cpu_pressure_pct;
}

/* The CPU guard: CPU-bound requests (their time in service is mostly on or
 * waiting for a CPU), or CPUs already full while requests need a fair share
 * of them.  An I/O-bound pool still gains from workers on a busy host. */
static void cpu_guard(const struct recent_figures *r, struct autoscale_decision *d)
{
	d->cpu_share = r->load > 0 ? (r->cpu + r->runq) / r->load : 0;
	double cores = r->el > 0 ? r->cpu / r->el : 0;
	bool full = (r->eff > 0 && cores >= 0.9 * r->eff) || r->throttled >= 0.25 ||
		    r->psi >= 50;
	d->cpu_guard = d->cpu_share >= AUTOSCALE_CPU_BOUND ||
		       (full && d->cpu_share >= AUTOSCALE_CPU_SHARE_BUSY);
	d->cpu_cap = (unsigned)ceil(r->eff > 0 ? r->eff : 1) + 1;
}

/* The listen queue stays non-empty and is not draining. */
static bool queue_stays(const struct autoscale_window *w)
{
	const struct autoscale_sample *a = autoscale_window_at(w, 0), *b = autoscale_window_at(w, 1);
	return a && b && a->queued > 0 && b->queued > 0 && a->queued >= b->queued;
}

static unsigned cap(struct autoscale_decision *d, unsigned to, unsigned limit, const char *by)
{
	if (to <= limit)
		return to;
	d->capped_by = by;
	d->capped_at = limit;
	return limit;
}

static unsigned grow(struct autoscale_decision *d, const struct autoscale_params *p,
		     unsigned want, uint64_t last_change_ns, uint64_t now)
{
	unsigned cur = d->from;
	if (last_change_ns && now < last_change_ns + (uint64_t)(p->up_cooldown_s * 1e9)) {
		d->why = AS_COOLDOWN;
		return cur;
	}
	unsigned to = want;
	if (p->max_step)
		to = cap(d, to, cur + p->max_step, "max_step");
	to = cap(d, to, p->max, "max_workers");
	if (d->cpu_guard)
		to = cap(d, to, d->cpu_cap > cur ? d->cpu_cap : cur, "CPU guard");
	return to;
}

/* Shrink to the peak demand of the last down_cooldown, if even that peak
 * with a margin fits in fewer workers and the window covers the span. */
static unsigned shrink(struct autoscale_decision *d, const struct autoscale_window *w,
		       const struct autoscale_params *p, uint64_t last_change_ns, uint64_t now)
{
	uint64_t span = (uint64_t)(p->down_cooldown_s * 1e9);
	unsigned cur = d->from, n = recent(w, p->down_cooldown_s, now);
	const struct autoscale_sample *oldest = autoscale_window_at(w, n - 1);
	bool covered = n < w->n || oldest->t_ns + span <= now + (uint64_t)(p->interval_s * 1e9);
	if ((last_change_ns && now < last_change_ns + span) || !covered) {
		d->why = AS_HOLD_DOWN;
		return cur;
	}
	double peak = 0, k = d->w_s / (d->c * d->util);
	for (unsigned i = 0; i < n; i++) {
		double raw = arrivals(w, i) * k;
		peak = raw > peak ? raw : peak;
	}
	unsigned need = (unsigned)ceil(peak - 1e-9);
	if ((unsigned)ceil(peak / AUTOSCALE_SHRINK_MARGIN - 1e-9) >= cur) {
		/* Hold: the demand of the last interval alone may fit in fewer,
		 * but not its peak over scale_down_cooldown. */
		bool lower_now = (unsigned)ceil(d->raw / AUTOSCALE_SHRINK_MARGIN - 1e-9) < cur;
		d->why = lower_now ? AS_HOLD_DOWN : AS_STEADY;
		return cur;
	}
	if (p->max_step && cur - need > p->max_step) {
		d->capped_by = "max_step";
		d->capped_at = cur - p->max_step;
		need = cur - p->max_step;
	}
	return need;
}

struct autoscale_decision autoscale_decide(const struct autoscale_window *w,
					   const struct autoscale_params *p, unsigned current,
					   uint64_t last_change_ns, uint64_t now)
{
	struct autoscale_decision d = {
		.from = current, .to = current, .why = AS_NO_DATA, .t_ns = now,
		.c = p->concurrency > 0 ? p->concurrency : 1,
		.util = p->target_util > 0 ? p->target_util : 1, .p95_s = NAN,
	};
	if (w->n == 0)
		return d;
	struct recent_figures r;
	sum_recent(w, recent(w, p->interval_s, now), &r);
	d.lambda = r.lambda;
	d.w_s = service_time(w);
	d.raw = d.lambda * d.w_s / (d.c * d.util);
	d.queued = autoscale_window_at(w, 0)->queued;
	d.p95_s = r.p95_s;
	cpu_guard(&r, &d);
	unsigned want = (unsigned)ceil(d.raw - 1e-9);
	d.why = AS_LITTLE;
	if (want <= current && queue_stays(w)) {
		want = current + 1;
		d.why = AS_QUEUE;
	}
	if (want <= current && p->target_p95_s > 0 && d.p95_s > p->target_p95_s) {
		want = current + 1;
		d.why = AS_P95;
	}
	if (want > current)
		d.to = grow(&d, p, want, last_change_ns, now);
	else if (want < current)
		d.to = shrink(&d, w, p, last_change_ns, now);
	else
		d.why = AS_STEADY;
	if (d.to < p->min) {
		d.to = p->min;
		d.capped_by = "min_workers";
		d.capped_at = p->min;
	}
	d.to = cap(&d, d.to, p->max, "max_workers");
	return d;
}

const char *autoscale_why_name(enum autoscale_why why)
{
	static const char *const names[] = {
		[AS_NO_DATA] = "no data", [AS_STEADY] = "steady", [AS_LITTLE] = "little",
		[AS_QUEUE] = "queue", [AS_P95] = "p95", [AS_COOLDOWN] = "cooldown",
		[AS_HOLD_DOWN] = "hold down",
	};
	return why < sizeof(names) / sizeof(names[0]) ? names[why] : "?";
}

void autoscale_describe(const struct autoscale_decision *d, char *buf, unsigned len)
{
	int n = d->to == d->from ? snprintf(buf, len, "hold %u: ", d->from)
				 : snprintf(buf, len, "scale %u\u2192%u: ", d->from, d->to);
	if (n < 0 || (unsigned)n >= len)
		return;
	n += snprintf(buf + n, len - (unsigned)n, "%.0f req/s \u00d7 %.0f ms / (%g \u00d7 %g) = %.1f",
		      d->lambda, d->w_s * 1e3, d->c, d->util, d->raw);
	if ((unsigned)n >= len)
		return;
	const char *tail = "";
	char more[160] = "";
	switch (d->why) {
	case AS_QUEUE: snprintf(more, sizeof(more), ", listen queue %u and not draining", d->queued); break;
	case AS_P95: snprintf(more, sizeof(more), ", p95 %.0f ms over its target", d->p95_s * 1e3); break;
	case AS_COOLDOWN: tail = ", waiting for scale_up_cooldown"; break;
	case AS_HOLD_DOWN: tail = ", lower demand not yet sustained for scale_down_cooldown"; break;
	case AS_NO_DATA: tail = ", no samples yet"; break;
	default: break;
	}
	n += snprintf(buf + n, len - (unsigned)n, "%s%s", more, tail);
	if (d->capped_by && (unsigned)n < len)
		n += snprintf(buf + n, len - (unsigned)n, ", capped by %s %u", d->capped_by, d->capped_at);
	if (d->cpu_guard && (unsigned)n < len)
		snprintf(buf + n, len - (unsigned)n,
			 " (CPU guard: %.0f%% of W on or waiting for a CPU, at most effective CPUs + 1 = %u)",
			 100 * d->cpu_share, d->cpu_cap);
}
