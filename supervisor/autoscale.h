/* The autoscaler's decision: how many workers the measured load needs.  A
 * pure function over a sliding window of pool samples (arrival rate, time
 * in service, CPU, listen queue), the configured bounds and the time: no
 * I/O, no clock read, no pool.  autoscale_run.c feeds it from the sampler
 * and applies the result through pool_set_target(..., POOL_BY_AUTOSCALER).
 *
 * Little's law (L = lambda * W): lambda requests/s each in service W seconds
 * keep L requests in service on average; a worker holds c of them at once, so
 * ceil(lambda * W / (c * target_utilization)) workers keep each one at the
 * target share of its capacity. */
#ifndef DROVER_AUTOSCALE_H
#define DROVER_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

#define AUTOSCALE_WINDOW 256 /* samples kept: > scale_down_cooldown / sample_interval */
#define AUTOSCALE_W_SAMPLES 16 /* service time: median over this many samples */
#define AUTOSCALE_HISTORY 16 /* decisions kept for status */
#define AUTOSCALE_SHRINK_MARGIN 0.9 /* shrink only if demand / 0.9 fits in fewer */
#define AUTOSCALE_CPU_BOUND 0.5 /* share of W on or waiting for a CPU: CPU-bound */
#define AUTOSCALE_CPU_SHARE_BUSY 0.25 /* ... enough to matter when the CPUs are full */

/* One sampler pass, summed over the pool's workers. */
struct autoscale_sample {
	uint64_t t_ns; /* monotonic time of the pass */
	double elapsed_s; /* covered by the pass */
	double rps; /* requests completed per second */
	double load; /* requests in service on average (busy time / elapsed) */
	double cpu; /* cores on CPU */
	double runq; /* seconds spent waiting for a CPU per second */
	double p95_s; /* pool p95 over the stats window; NaN: none */
	unsigned queued; /* listen queues' depth at the pass */
	double effective_cpus; /* online CPUs, or the cgroup quota if lower */
	double cpu_pressure_pct; /* PSI cpu "some" share of the pass; < 0: unknown */
	double throttled_frac; /* cgroup periods throttled, 0..1 */
};

struct autoscale_window {
	struct autoscale_sample s[AUTOSCALE_WINDOW];
	unsigned pos, n; /* next slot, samples held */
};

struct autoscale_params {
	unsigned min, max; /* bounds of the target */
	double concurrency; /* requests one worker holds at once: 1 sync, threads */
	double target_util; /* 0 < u <= 1 */
	double target_p95_s; /* 0: no latency goal */
	double interval_s; /* lambda is averaged over this much of the window */
	double up_cooldown_s, down_cooldown_s;
	unsigned max_step; /* 0: no limit */
};

enum autoscale_why {
	AS_NO_DATA, /* empty window: hold */
	AS_STEADY, /* the target fits the demand */
	AS_LITTLE, /* grown or shrunk to Little's law count */
	AS_QUEUE, /* the listen queue stays non-empty and is not draining */
	AS_P95, /* p95 above target_p95 */
	AS_COOLDOWN, /* would change, waits for its cooldown */
	AS_HOLD_DOWN, /* lower demand, not yet sustained for scale_down_cooldown */
};

struct autoscale_decision {
	unsigned from, to;
	enum autoscale_why why;
	double lambda, w_s, c, util, raw; /* Little's law inputs and result */
	unsigned queued;
	double p95_s;
	double cpu_share; /* share of W on or waiting for a CPU */
	bool cpu_guard; /* the CPU guard held the target */
	unsigned cpu_cap; /* effective CPUs + 1 */
	const char *capped_by; /* "max_workers", "min_workers", "max_step", "CPU guard" or NULL */
	unsigned capped_at;
	uint64_t t_ns;
};

void autoscale_window_push(struct autoscale_window *w, const struct autoscale_sample *s);
/* The i-th newest sample (0 = newest); NULL past the oldest. */
const struct autoscale_sample *autoscale_window_at(const struct autoscale_window *w, unsigned i);

/* The decision at now (monotonic ns) for a pool whose target is current and
 * last changed at last_change_ns (0: never).  Growth waits up_cooldown after
 * a change; shrinking needs down_cooldown after a change and the demand low
 * over all of the last down_cooldown. */
struct autoscale_decision autoscale_decide(const struct autoscale_window *w,
					   const struct autoscale_params *p, unsigned current,
					   uint64_t last_change_ns, uint64_t now);

/* The decision as one line with its inputs, e.g.
 *   scale 4→7: 310 req/s × 21 ms / (1 × 0.7) = 9.3, capped by max_workers 7 */
void autoscale_describe(const struct autoscale_decision *d, char *buf, unsigned len);
/* A short word for why (status, metrics label). */
const char *autoscale_why_name(enum autoscale_why why);
#endif
