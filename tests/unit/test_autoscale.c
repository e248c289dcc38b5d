/* Unit tests of supervisor/autoscale.c: the decision over synthetic series
 * (step up, step down, ramp, CPU-bound, saturated cgroup quota, noisy
 * arrivals, an empty window, one huge outlier), driven through a small
 * queueing model of the pool: no process, no clock. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "supervisor/autoscale.h"

#define S 1000000000ull

/* A pool of sync workers serving requests of w_s seconds, cpu_share of it on
 * a CPU; arrivals beyond its capacity wait in the listen queue. */
struct sim {
	struct autoscale_window win;
	struct autoscale_params p;
	unsigned target, changes, max_seen;
	uint64_t now, last_change;
	double queue, w_s, cpu_share, eff, throttled;
	struct autoscale_decision last;
};

static void sim_init(struct sim *s, unsigned start, double w_s)
{
	*s = (struct sim){.target = start, .w_s = w_s, .eff = 2, .cpu_share = 0.02,
			  .max_seen = start, .now = 100 * S};
	s->p = (struct autoscale_params){.min = 1, .max = 64, .concurrency = 1, .target_util = 0.7,
					 .interval_s = 1, .up_cooldown_s = 1, .down_cooldown_s = 5};
}

/* One second at arrival rate lambda: a sample, then a decision. */
static void sim_second(struct sim *s, double lambda)
{
	double cap = s->target * s->p.concurrency / s->w_s;
	double want = lambda + s->queue, served = want < cap ? want : cap;
	s->queue = want - served;
	double cpu = served * s->w_s * s->cpu_share;
	struct autoscale_sample x = {
		.t_ns = s->now, .elapsed_s = 1, .rps = served, .load = served * s->w_s,
		.cpu = cpu < s->eff ? cpu : s->eff, .p95_s = s->w_s * 1.2,
		.queued = (unsigned)s->queue, .effective_cpus = s->eff, .cpu_pressure_pct = -1,
		.throttled_frac = s->throttled,
	};
	autoscale_window_push(&s->win, &x);
	s->last = autoscale_decide(&s->win, &s->p, s->target, s->last_change, s->now);
	if (s->last.to != s->target) {
		s->target = s->last.to;
		s->last_change = s->now;
		s->changes++;
	}
	if (s->target > s->max_seen)
		s->max_seen = s->target;
	s->now += S;
}

static unsigned little(double lambda, double w_s)
{
	return (unsigned)ceil(lambda * w_s / 0.7 - 1e-9);
}

static void step_up(void)
{
	struct sim s;
	sim_init(&s, 1, 0.05);
	for (int i = 0; i < 10; i++)
		sim_second(&s, 40);
	CHECK(abs((int)s.target - (int)little(40, 0.05)) <= 1);
	int reached = -1;
	for (int i = 0; i < 10; i++) {
		sim_second(&s, 160);
		if (reached < 0 && abs((int)s.target - (int)little(160, 0.05)) <= 1)
			reached = i + 1;
	}
	CHECK(reached >= 1 && reached <= 3);
	CHECK(s.target >= 11 && s.target <= 13);
	CHECK(!s.last.cpu_guard);
}

static void step_down(void)
{
	struct sim s;
	sim_init(&s, 12, 0.05);
	for (int i = 0; i < 10; i++)
		sim_second(&s, 160);
	unsigned peak = s.target;
	CHECK(peak >= 11 && peak <= 13);
	/* Lower demand holds the pool for scale_down_cooldown (hysteresis) ... */
	for (int i = 0; i < 4; i++) {
		sim_second(&s, 40);
		CHECK(s.target == peak);
	}
	CHECK(s.last.why == AS_HOLD_DOWN);
	/* ... then the pool comes down to the trough's count. */
	for (int i = 0; i < 4; i++)
		sim_second(&s, 40);
	CHECK(s.target >= 2 && s.target <= 4);
}

static void ramp(void)
{
	struct sim s;
	sim_init(&s, 1, 0.05);
	unsigned prev = s.target;
	bool monotonic = true;
	for (int i = 0; i <= 40; i++) {
		double lambda = 10 + 190.0 * i / 40;
		sim_second(&s, lambda);
		monotonic = monotonic && s.target >= prev;
		prev = s.target;
		CHECK(s.target <= little(lambda, 0.05) + 2);
	}
	CHECK(monotonic);
	for (int i = 0; i < 3; i++)
		sim_second(&s, 200);
	CHECK(abs((int)s.target - (int)little(200, 0.05)) <= 1);
}

static void cpu_bound(void)
{
	struct sim s;
	sim_init(&s, 1, 0.02);
	s.cpu_share = 0.95; /* a request is all CPU */
	for (int i = 0; i < 20; i++)
		sim_second(&s, 500);
	CHECK(s.max_seen <= 3); /* effective CPUs (2) + 1 */
	CHECK(s.target == 3);
	CHECK(s.last.cpu_guard && s.last.cpu_cap == 3);
	char line[400];
	autoscale_describe(&s.last, line, sizeof(line));
	CHECK(strstr(line, "CPU guard") != NULL);
}

static void saturated_quota(void)
{
	struct sim s;
	sim_init(&s, 1, 0.05);
	s.eff = 1.5; /* cpu.max 150000 100000 */
	s.cpu_share = 0.3; /* partly CPU: fine alone, not on throttled CPUs */
	s.throttled = 0.6;
	for (int i = 0; i < 20; i++)
		sim_second(&s, 200);
	CHECK(s.max_seen <= 3); /* ceil(1.5) + 1 */
	CHECK(s.last.cpu_guard);
	/* The same work unthrottled on idle CPUs grows to its Little's count. */
	sim_init(&s, 1, 0.05);
	s.cpu_share = 0.3;
	s.eff = 8;
	for (int i = 0; i < 20; i++)
		sim_second(&s, 200);
	CHECK(abs((int)s.target - (int)little(200, 0.05)) <= 1);
	CHECK(!s.last.cpu_guard);
}

static void noisy(void)
{
	struct sim s;
	sim_init(&s, 1, 0.05);
	s.p.down_cooldown_s = 10;
	unsigned seed = 12345;
	for (int i = 0; i < 15; i++)
		sim_second(&s, 100);
	unsigned settled = s.changes;
	for (int i = 0; i < 120; i++) {
		seed = seed * 1103515245u + 12345u;
		double jitter = ((double)((seed >> 16) % 1000) / 1000.0 - 0.5) * 0.5; /* ±25% */
		sim_second(&s, 100 * (1 + jitter));
	}
	CHECK(s.changes - settled <= 2); /* no flapping */
	CHECK(s.target >= little(100, 0.05) && s.target <= little(125, 0.05) + 1);
}

static void empty_window(void)
{
	struct autoscale_window w = {0};
	struct autoscale_params p = {.min = 1, .max = 10, .concurrency = 1, .target_util = 0.7,
				     .interval_s = 1, .down_cooldown_s = 5};
	struct autoscale_decision d = autoscale_decide(&w, &p, 4, 0, 50 * S);
	CHECK(d.to == 4 && d.why == AS_NO_DATA);
	/* Idle samples: no requests, no queue; the pool shrinks to its floor,
	 * but only once the window covers scale_down_cooldown. */
	for (int i = 0; i < 3; i++) {
		struct autoscale_sample x = {.t_ns = (50 + (unsigned)i) * S, .elapsed_s = 1, .effective_cpus = 2};
		autoscale_window_push(&w, &x);
	}
	d = autoscale_decide(&w, &p, 4, 0, 52 * S);
	CHECK(d.to == 4 && d.why == AS_HOLD_DOWN);
	for (int i = 3; i < 8; i++) {
		struct autoscale_sample x = {.t_ns = (50 + (unsigned)i) * S, .elapsed_s = 1, .effective_cpus = 2};
		autoscale_window_push(&w, &x);
	}
	d = autoscale_decide(&w, &p, 4, 0, 57 * S);
	CHECK(d.to == 1);
}

static void huge_outlier(void)
{
	struct sim s;
	sim_init(&s, 3, 0.05);
	for (int i = 0; i < 10; i++)
		sim_second(&s, 40);
	unsigned steady = s.target;
	/* One 30 s request finishes: 30 s of busy time in one sample. */
	struct autoscale_sample x = *autoscale_window_at(&s.win, 0);
	x.t_ns = s.now;
	x.load += 30;
	autoscale_window_push(&s.win, &x);
	struct autoscale_decision d = autoscale_decide(&s.win, &s.p, s.target, s.last_change, s.now);
	CHECK(d.to == steady);
	CHECK(d.w_s > 0.04 && d.w_s < 0.06);
}

static void queue_without_completions(void)
{
	/* Every worker stuck: nothing completes, the queue grows. */
	struct autoscale_window w = {0};
	struct autoscale_params p = {.min = 1, .max = 10, .concurrency = 1, .target_util = 0.7,
				     .interval_s = 1, .down_cooldown_s = 5};
	for (unsigned i = 0; i < 3; i++) {
		struct autoscale_sample x = {.t_ns = (10 + i) * S, .elapsed_s = 1, .queued = 5 + 5 * i,
					     .effective_cpus = 2};
		autoscale_window_push(&w, &x);
	}
	struct autoscale_decision d = autoscale_decide(&w, &p, 2, 0, 12 * S);
	CHECK(d.to == 3 && d.why == AS_QUEUE);
}

static void latency_goal_and_bounds(void)
{
	struct sim s;
	sim_init(&s, 2, 0.05);
	s.p.target_p95_s = 0.03; /* below the service time: grows while it misses */
	s.p.max = 5;
	for (int i = 0; i < 10; i++)
		sim_second(&s, 10);
	CHECK(s.target == 5);
	CHECK(s.last.capped_by && strcmp(s.last.capped_by, "max_workers") == 0);
	/* max_step: one decision adds at most that many */
	sim_init(&s, 1, 0.05);
	s.p.max_step = 2;
	sim_second(&s, 160);
	CHECK(s.target == 3);
}

static void describe_line(void)
{
	struct autoscale_decision d = {.from = 4, .to = 7, .why = AS_LITTLE, .lambda = 310,
				       .w_s = 0.021, .c = 1, .util = 0.7, .raw = 310 * 0.021 / 0.7,
				       .capped_by = "max_workers", .capped_at = 7};
	char line[400];
	autoscale_describe(&d, line, sizeof(line));
	CHECK_STR(line, "scale 4\u21927: 310 req/s \u00d7 21 ms / (1 \u00d7 0.7) = 9.3, capped by max_workers 7");
	d.to = 4;
	d.why = AS_STEADY;
	d.capped_by = NULL;
	autoscale_describe(&d, line, sizeof(line));
	CHECK_STR(line, "hold 4: 310 req/s \u00d7 21 ms / (1 \u00d7 0.7) = 9.3");
}

int main(void)
{
	RUN(step_up);
	RUN(step_down);
	RUN(ramp);
	RUN(cpu_bound);
	RUN(saturated_quota);
	RUN(noisy);
	RUN(empty_window);
	RUN(huge_outlier);
	RUN(queue_without_completions);
	RUN(latency_goal_and_bounds);
	RUN(describe_line);
	return check_summary();
}
