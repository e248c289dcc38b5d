/* The autoscaler in the master (see autoscale_run.h): sample -> decide ->
 * act, at its own pace inside the arbiter's tick.  Scaling down goes through
 * the pool, which drains an idle worker first (never kills one mid-request:
 * a drained worker finishes what it holds, uWSGI #1702). */
#include "supervisor/autoscale_run.h"

#include <math.h>
#include <string.h>

#include "supervisor/arbiter.h"
#include "supervisor/log.h"
#include "supervisor/sampler.h"

#define MAX_FACTOR 4 /* max_workers 0: 4 x workers */

static unsigned conf_max(const struct drover_conf *c)
{
	long long m = c->max_workers ? c->max_workers : MAX_FACTOR * c->workers;
	return (unsigned)(m < POOL_MAX_TARGET ? m : POOL_MAX_TARGET);
}

void autoscale_run_configure(struct arbiter *ar, uint64_t now)
{
	struct autoscaler *a = &ar->autoscale;
	a->on = ar->conf.autoscale;
	a->paused = false;
	a->paused_until_ns = 0;
	a->last_change_ns = now; /* the reload's own size is a change */
	a->next_decide_ns = now;
	ar->pool.autoscale_min = (unsigned)ar->conf.min_workers;
	ar->pool.autoscale_max = conf_max(&ar->conf);
	ar->sampler->autoscale = a;
}

/* One sample from the sampler's last pass, summed over the pool. */
static void take_sample(struct arbiter *ar, uint64_t now)
{
	struct autoscaler *a = &ar->autoscale;
	const struct sampler *s = ar->sampler;
	const struct pool_figures *pf = &s->pool;
	const struct host_view *h = &s->host;
	struct autoscale_sample x = {
		.t_ns = now,
		.elapsed_s = a->last_sample_ns ? (double)(now - a->last_sample_ns) / 1e9
					       : ar->conf.sample_interval,
		.rps = pf->rps,
		/* An event worker holds many requests at once: its load is the
		 * share of wall time its loop is busy (util, at most 1 each). */
		.load = ar->conf.worker_class == WORKER_EVENT ? pf->util_mean * pf->workers : pf->load,
		.cpu = pf->oncpu > 0 ? pf->oncpu : pf->cpu,
		.runq = pf->runq_wait,
		.p95_s = pf->p95,
		.effective_cpus = h->effective_cpus,
		.cpu_pressure_pct = h->psi[0].present ? h->psi_some_pct[0] : -1,
		.throttled_frac = h->has_cg_stat && h->cg_stat.has_throttling ? h->cg_rates.throttled_frac : 0,
	};
	for (size_t i = 0; i < s->nl; i++)
		x.queued += s->l[i].ok ? s->l[i].queued : 0;
	autoscale_window_push(&a->win, &x);
	a->last_sample_ns = now;
	a->seen_passes = s->passes;
}

static void params(const struct arbiter *ar, struct autoscale_params *p)
{
	const struct drover_conf *c = &ar->conf;
	*p = (struct autoscale_params){
		.min = ar->pool.autoscale_min,
		.max = ar->pool.autoscale_max,
		.concurrency = c->worker_class == WORKER_THREAD ? (double)c->threads : 1,
		.target_util = c->target_utilization,
		.target_p95_s = c->target_p95,
		.interval_s = c->scale_interval,
		.up_cooldown_s = c->scale_up_cooldown,
		.down_cooldown_s = c->scale_down_cooldown,
		.max_step = (unsigned)c->max_step,
	};
}

static void remember(struct autoscaler *a, const struct autoscale_decision *d, const char *text)
{
	unsigned i = a->hist_pos;
	a->hist[i] = *d;
	snprintf(a->hist_text[i], sizeof(a->hist_text[i]), "%s", text);
	a->hist_pos = (i + 1) % AUTOSCALE_HISTORY;
	if (a->hist_n < AUTOSCALE_HISTORY)
		a->hist_n++;
}

static void decide(struct arbiter *ar, uint64_t now)
{
	struct autoscaler *a = &ar->autoscale;
	struct autoscale_params p;
	params(ar, &p);
	struct autoscale_decision d = autoscale_decide(&a->win, &p, ar->pool.target,
						       a->last_change_ns, now);
	bool news = d.to != d.from || (d.capped_by && (!a->last.capped_by ||
				       strcmp(d.capped_by, a->last.capped_by) != 0));
	a->decisions++;
	a->last = d;
	autoscale_describe(&d, a->last_text, sizeof(a->last_text));
	if (!news) {
		log_debug("autoscale: %s", a->last_text);
		return;
	}
	log_info("%s", a->last_text);
	remember(a, &d, a->last_text);
	if (d.to != d.from) {
		pool_set_target(&ar->pool, d.to, POOL_BY_AUTOSCALER);
		a->last_change_ns = now;
		a->changes++;
	}
}

void autoscale_run_tick(struct arbiter *ar, uint64_t now)
{
	struct autoscaler *a = &ar->autoscale;
	a->min = ar->pool.autoscale_min;
	a->max = ar->pool.autoscale_max;
	if (!a->on || ar->state != MASTER_RUNNING)
		return;
	if (ar->sampler->passes != a->seen_passes)
		take_sample(ar, now);
	if (a->paused || now < a->paused_until_ns || now < a->next_decide_ns)
		return;
	a->next_decide_ns = now + (uint64_t)(ar->conf.scale_interval * 1e9);
	decide(ar, now);
}

bool autoscale_run_operator(struct arbiter *ar, enum autoscale_op op, unsigned n, uint64_t now)
{
	struct autoscaler *a = &ar->autoscale;
	struct pool *p = &ar->pool;
	if (!a->on)
		return false;
	unsigned t = p->target;
	switch (op) {
	case AS_OP_GROW:
		a->paused = false;
		p->autoscale_min = t + 1 < POOL_MAX_TARGET ? t + 1 : POOL_MAX_TARGET;
		if (p->autoscale_max < p->autoscale_min)
			p->autoscale_max = p->autoscale_min;
		break;
	case AS_OP_SHRINK:
		p->autoscale_max = t > 1 ? t - 1 : 1;
		if (p->autoscale_min > p->autoscale_max)
			p->autoscale_min = p->autoscale_max;
		break;
	case AS_OP_SET:
		a->paused_until_ns = now + (uint64_t)(ar->conf.scale_down_cooldown * 1e9);
		pool_set_target(p, n, POOL_BY_OPERATOR);
		a->last_change_ns = now;
		log_info("autoscale: %u workers set by the operator, held for %.0f s", p->target,
			 ar->conf.scale_down_cooldown);
		return true;
	case AS_OP_PAUSE:
		a->paused = true;
		pool_set_target(p, 0, POOL_BY_OPERATOR);
		log_info("autoscale: paused with no workers (TTIN or HUP to resume)");
		return true;
	}
	pool_set_target(p, t, POOL_BY_AUTOSCALER); /* into the new bounds */
	a->last_change_ns = now;
	log_info("autoscale: bounds %u..%u, %u workers wanted", p->autoscale_min, p->autoscale_max,
		 p->target);
	return true;
}
