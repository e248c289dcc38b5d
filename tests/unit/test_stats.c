/* Unit tests of supervisor/stats.c: percentiles from histogram deltas,
 * rates per second and per request, pool sums, on synthetic samples. */
#include <math.h>

#include "check.h"
#include "supervisor/stats.h"

static bool near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

static void quantile_empty_is_nan(void)
{
	struct stats_hist h = {0};
	CHECK(isnan(stats_hist_quantile(&h, 0.5)));
	CHECK(isnan(stats_hist_mean(&h)));
	h.b[3] = 1;
	CHECK(isnan(stats_hist_quantile(&h, 0)));
	CHECK(isnan(stats_hist_quantile(&h, 1)));
}

static void quantile_interpolates_in_bucket(void)
{
	struct stats_hist h = {0};
	h.b[0] = 100; /* 0 .. 50 us */
	CHECK(near(stats_hist_quantile(&h, 0.5), 25e-6, 1e-12));
	CHECK(near(stats_hist_quantile(&h, 0.99), 49.5e-6, 1e-12));
	struct stats_hist g = {0};
	g.b[2] = 50; /* 100 .. 200 us */
	g.b[4] = 50; /* 400 .. 800 us */
	CHECK(near(stats_hist_quantile(&g, 0.5), 200e-6, 1e-12));
	CHECK(near(stats_hist_quantile(&g, 0.75), 600e-6, 1e-12));
	CHECK(near(stats_hist_quantile(&g, 0.25), 150e-6, 1e-12));
}

static void quantile_inf_bucket_gives_lower_bound(void)
{
	struct stats_hist h = {0};
	h.b[SB_HIST_BUCKETS - 1] = 10;
	double q = stats_hist_quantile(&h, 0.99);
	CHECK(isfinite(q));
	CHECK(near(q, sb_hist_upper_s(SB_HIST_BUCKETS - 2), 1e-9));
}

static void delta_never_negative(void)
{
	struct stats_hist a = {0}, b = {0}, d;
	a.b[1] = 10;
	b.b[1] = 4; /* a reset counter */
	b.b[2] = 7;
	a.sum_ns = 100;
	b.sum_ns = 300;
	stats_hist_delta(&a, &b, &d);
	CHECK(d.b[1] == 0);
	CHECK(d.b[2] == 7);
	CHECK(d.sum_ns == 200);
	CHECK(stats_hist_count(&d) == 7);
	stats_hist_add(&d, &b);
	CHECK(d.b[2] == 14 && d.b[1] == 4);
}

static void mean_from_sum(void)
{
	struct stats_hist h = {0};
	h.b[5] = 4;
	h.sum_ns = 4000000; /* 4 ms over 4 requests */
	CHECK(near(stats_hist_mean(&h), 1e-3, 1e-12));
}

static void worker_figures_rates(void)
{
	struct stats_input in = {
		.elapsed_s = 2.0, .clk_tck = 100, .requests = 100, .busy_ns = 1000000000ull,
		.utime = 60, .stime = 40,
		.threads = {.vcsw = 200, .ivcsw = 50, .cpu_ns = 1000000000ull,
			    .wait_ns = 200000000ull, .busiest_tid = 42, .busiest_csw = 240},
	};
	in.window.b[0] = 100;
	struct worker_figures f;
	stats_worker_figures(&in, &f);
	CHECK(near(f.rps, 50, 1e-9));
	CHECK(near(f.util, 0.5, 1e-9));
	CHECK(near(f.cpu, 0.5, 1e-9));
	CHECK(near(f.cpu_user, 0.3, 1e-9));
	CHECK(near(f.oncpu, 0.5, 1e-9));
	CHECK(near(f.vcsw_s, 100, 1e-9));
	CHECK(near(f.ivcsw_s, 25, 1e-9));
	CHECK(near(f.vcsw_req, 2, 1e-9));
	CHECK(near(f.ivcsw_req, 0.5, 1e-9));
	CHECK(near(f.runq_wait, 0.1, 1e-9));
	CHECK(near(f.runq_wait_ms_req, 2, 1e-9));
	CHECK(near(f.cpu_ms_req, 10, 1e-9));
	CHECK(f.busiest_tid == 42 && near(f.busiest_csw_s, 120, 1e-9));
	CHECK(f.window_requests == 100);
	CHECK(near(f.p50, 25e-6, 1e-12));
}

static void worker_figures_idle_and_zero_elapsed(void)
{
	struct stats_input in = {.elapsed_s = 0, .clk_tck = 100, .utime = 10,
				 .threads = {.vcsw = 5}};
	struct worker_figures f;
	stats_worker_figures(&in, &f);
	CHECK(f.rps == 0 && f.cpu == 0 && f.vcsw_s == 0);
	CHECK(f.vcsw_req == 0); /* no requests: no per-request figure */
	CHECK(isnan(f.p99));
	in.elapsed_s = 1;
	in.busy_ns = 5000000000ull; /* more busy time than elapsed: capped */
	stats_worker_figures(&in, &f);
	CHECK(f.util == 1.0);
}

static void pool_sums_and_merges_windows(void)
{
	struct pool_figures p;
	struct stats_hist acc, w1 = {0}, w2 = {0};
	struct worker_figures f1 = {.rps = 10, .cpu = 0.25, .util = 0.2, .vcsw_s = 5};
	struct worker_figures f2 = {.rps = 30, .cpu = 0.5, .util = 0.4, .vcsw_s = 7};
	w1.b[0] = 50;
	w2.b[4] = 50;
	stats_pool_begin(&p, &acc);
	stats_pool_add(&p, &acc, &f1, &w1);
	stats_pool_add(&p, &acc, &f2, &w2);
	stats_pool_end(&p, &acc);
	CHECK(p.workers == 2);
	CHECK(near(p.rps, 40, 1e-9) && near(p.cpu, 0.75, 1e-9) && near(p.vcsw_s, 12, 1e-9));
	CHECK(near(p.util_mean, 0.3, 1e-9));
	CHECK(p.window_requests == 100);
	CHECK(near(p.p50, 50e-6, 1e-12)); /* the top of bucket 0 */
	CHECK(p.p99 > 400e-6 && p.p99 <= 800e-6);
}

static void psi_share(void)
{
	CHECK(near(stats_psi_share(1000000, 1500000, 1.0), 50, 1e-9));
	CHECK(stats_psi_share(2000, 1000, 1.0) == 0);
	CHECK(stats_psi_share(0, 1000, 0) == 0);
}

int main(void)
{
	RUN(quantile_empty_is_nan);
	RUN(quantile_interpolates_in_bucket);
	RUN(quantile_inf_bucket_gives_lower_bound);
	RUN(delta_never_negative);
	RUN(mean_from_sum);
	RUN(worker_figures_rates);
	RUN(worker_figures_idle_and_zero_elapsed);
	RUN(pool_sums_and_merges_windows);
	RUN(psi_share);
	return check_summary();
}
