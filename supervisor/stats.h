/* Derived figures from two samples: latency percentiles from histogram
 * deltas, request rate, utilization, CPU share and context-switch rates per
 * second and per request.  Pure functions: no I/O, no clock (elapsed time
 * comes in as an argument), so they are unit-tested on synthetic series. */
#ifndef DROVER_STATS_H
#define DROVER_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "supervisor/sample_parse.h"
#include "workers/scoreboard.h"

/* Percentiles are taken over this many sample intervals, so that a quiet
 * second does not turn p99 into noise. */
#define STATS_WINDOW 10

/* A latency histogram as the scoreboard keeps it (cumulative counts). */
struct stats_hist {
	uint64_t b[SB_HIST_BUCKETS];
	uint64_t sum_ns;
};

/* out = after - before, bucket by bucket (never negative). */
void stats_hist_delta(const struct stats_hist *before, const struct stats_hist *after,
		      struct stats_hist *out);
void stats_hist_add(struct stats_hist *acc, const struct stats_hist *x);
uint64_t stats_hist_count(const struct stats_hist *h);
/* The q-quantile (0 < q < 1) in seconds, interpolating linearly inside the
 * bucket as Prometheus' histogram_quantile does; the +Inf bucket answers its
 * lower bound.  NaN when the histogram is empty. */
double stats_hist_quantile(const struct stats_hist *h, double q);
/* Mean duration in seconds; NaN when empty. */
double stats_hist_mean(const struct stats_hist *h);

/* What changed in one worker between two samples. */
struct stats_input {
	double elapsed_s; /* between the two reads */
	long clk_tck;
	uint64_t requests; /* deltas ... */
	uint64_t busy_ns;
	uint64_t utime, stime; /* clock ticks */
	struct thread_agg threads; /* switch counts, on-CPU and wait ns, summed over threads */
	struct stats_hist window; /* histogram delta over the percentile window */
};

struct worker_figures {
	double rps; /* requests per second */
	double util; /* share of the interval spent serving requests, 0..1 */
	double load; /* requests in service on average (busy time / elapsed; > 1 with threads) */
	double cpu, cpu_user, cpu_sys; /* cores (1.0 = one core busy) */
	double oncpu; /* cores, from schedstat (ns resolution) */
	double runq_wait; /* seconds waiting for a CPU per second */
	double runq_wait_ms_req; /* ms waiting for a CPU per request */
	double cpu_ms_req; /* ms of CPU per request */
	double vcsw_s, ivcsw_s; /* context switches per second */
	double vcsw_req, ivcsw_req; /* per request (0 without requests) */
	double p50, p95, p99, mean; /* seconds over the window; NaN without requests */
	uint64_t window_requests;
	int busiest_tid; /* thread with most switches in the interval */
	double busiest_csw_s;
};
void stats_worker_figures(const struct stats_input *in, struct worker_figures *out);

/* The pool as a whole: sums of rates, percentiles of the summed windows. */
struct pool_figures {
	unsigned workers;
	double rps, cpu, util_mean, vcsw_s, ivcsw_s, runq_wait;
	double load, oncpu; /* sums: requests in service (Little's L), cores on CPU (schedstat) */
	double p50, p95, p99, mean;
	uint64_t window_requests;
};
void stats_pool_begin(struct pool_figures *p, struct stats_hist *window_acc);
void stats_pool_add(struct pool_figures *p, struct stats_hist *window_acc,
		    const struct worker_figures *w, const struct stats_hist *window);
void stats_pool_end(struct pool_figures *p, const struct stats_hist *window_acc);

/* Percent of elapsed_s that the pressure total (microseconds) grew by. */
double stats_psi_share(uint64_t total_us_before, uint64_t total_us_after, double elapsed_s);
#endif
