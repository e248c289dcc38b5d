/* Derived figures over two samples (see stats.h).  Everything here is
 * arithmetic on values handed in; the sampler does the reading and keeps the
 * history these functions compare. */
#include "supervisor/stats.h"

#include <math.h>

void stats_hist_delta(const struct stats_hist *before, const struct stats_hist *after,
		      struct stats_hist *out)
{
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
		out->b[i] = sample_delta(before->b[i], after->b[i]);
	out->sum_ns = sample_delta(before->sum_ns, after->sum_ns);
}

void stats_hist_add(struct stats_hist *acc, const struct stats_hist *x)
{
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
		acc->b[i] += x->b[i];
	acc->sum_ns += x->sum_ns;
}

uint64_t stats_hist_count(const struct stats_hist *h)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
		n += h->b[i];
	return n;
}

double stats_hist_quantile(const struct stats_hist *h, double q)
{
	uint64_t total = stats_hist_count(h);
	if (total == 0 || !(q > 0) || !(q < 1))
		return NAN;
	double rank = q * (double)total, cum = 0;
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
		double c = (double)h->b[i];
		double lower = i ? sb_hist_upper_s(i - 1) : 0.0;
		if (c > 0 && cum + c >= rank) {
			double upper = sb_hist_upper_s(i);
			if (isinf(upper))
				return lower; /* nothing to interpolate towards */
			return lower + (upper - lower) * (rank - cum) / c;
		}
		cum += c;
	}
	return sb_hist_upper_s(SB_HIST_BUCKETS - 2); /* not reached: rank <= total */
}

double stats_hist_mean(const struct stats_hist *h)
{
	uint64_t n = stats_hist_count(h);
	return n ? (double)h->sum_ns / 1e9 / (double)n : NAN;
}

static double per_s(uint64_t delta, double elapsed_s)
{
	return elapsed_s > 0 ? (double)delta / elapsed_s : 0;
}

static double per_req(double amount, uint64_t requests)
{
	return requests ? amount / (double)requests : 0;
}

void stats_worker_figures(const struct stats_input *in, struct worker_figures *out)
{
	double el = in->elapsed_s, tck = in->clk_tck > 0 ? (double)in->clk_tck : 100.0;
	*out = (struct worker_figures){0};
	out->rps = per_s(in->requests, el);
	out->util = el > 0 ? fmin(1.0, (double)in->busy_ns / 1e9 / el) : 0;
	out->load = el > 0 ? (double)in->busy_ns / 1e9 / el : 0;
	out->cpu_user = el > 0 ? (double)in->utime / tck / el : 0;
	out->cpu_sys = el > 0 ? (double)in->stime / tck / el : 0;
	out->cpu = out->cpu_user + out->cpu_sys;
	out->oncpu = el > 0 ? (double)in->threads.cpu_ns / 1e9 / el : 0;
	out->runq_wait = el > 0 ? (double)in->threads.wait_ns / 1e9 / el : 0;
	out->runq_wait_ms_req = per_req((double)in->threads.wait_ns / 1e6, in->requests);
	/* schedstat has ns resolution where utime/stime have ticks: prefer it. */
	out->cpu_ms_req = per_req((double)in->threads.cpu_ns / 1e6, in->requests);
	out->vcsw_s = per_s(in->threads.vcsw, el);
	out->ivcsw_s = per_s(in->threads.ivcsw, el);
	out->vcsw_req = per_req((double)in->threads.vcsw, in->requests);
	out->ivcsw_req = per_req((double)in->threads.ivcsw, in->requests);
	out->window_requests = stats_hist_count(&in->window);
	out->p50 = stats_hist_quantile(&in->window, 0.50);
	out->p95 = stats_hist_quantile(&in->window, 0.95);
	out->p99 = stats_hist_quantile(&in->window, 0.99);
	out->mean = stats_hist_mean(&in->window);
	out->busiest_tid = in->threads.busiest_tid;
	out->busiest_csw_s = per_s(in->threads.busiest_csw, el);
}

void stats_pool_begin(struct pool_figures *p, struct stats_hist *window_acc)
{
	*p = (struct pool_figures){0};
	*window_acc = (struct stats_hist){0};
}

void stats_pool_add(struct pool_figures *p, struct stats_hist *window_acc,
		    const struct worker_figures *w, const struct stats_hist *window)
{
	p->workers++;
	p->rps += w->rps;
	p->cpu += w->cpu;
	p->util_mean += w->util;
	p->load += w->load;
	p->oncpu += w->oncpu;
	p->vcsw_s += w->vcsw_s;
	p->ivcsw_s += w->ivcsw_s;
	p->runq_wait += w->runq_wait;
	stats_hist_add(window_acc, window);
}

void stats_pool_end(struct pool_figures *p, const struct stats_hist *window_acc)
{
	if (p->workers)
		p->util_mean /= p->workers;
	p->window_requests = stats_hist_count(window_acc);
	p->p50 = stats_hist_quantile(window_acc, 0.50);
	p->p95 = stats_hist_quantile(window_acc, 0.95);
	p->p99 = stats_hist_quantile(window_acc, 0.99);
	p->mean = stats_hist_mean(window_acc);
}

double stats_psi_share(uint64_t total_us_before, uint64_t total_us_after, double elapsed_s)
{
	if (!(elapsed_s > 0))
		return 0;
	return 100.0 * (double)sample_delta(total_us_before, total_us_after) / 1e6 / elapsed_s;
}
