/* Unit tests of supervisor/doctor.c: each finding's decision over synthetic
 * sample series, with the healthy cases just short of each threshold, and
 * the hold-off (a finding appears after DOCTOR_HOLD samples, clears after as
 * many without). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "supervisor/doctor.h"

/* A healthy, loaded pool: 2 CPUs, 3 sync workers busy half the time. */
static struct doctor_input healthy(void)
{
	struct doctor_input in = {
		.worker_class = 0, .workers = 3, .threads_max = 1, .cpus = 2,
		.rps = 2000, .cpu = 1.6, .vcsw_s = 6000, .ivcsw_s = 150, .runq_wait = 0.2,
		.mean_latency_s = 0.001, .runnable = 3, .load1 = 2.5, .busy = 2, .queued = 0,
		.psi_cpu = 5, .psi_io = 1, .psi_mem = 0, .has_quota = false, .quota_cpus = NAN,
		.throttled_frac = NAN, .swap_pages_s = 0, .rss_growth_mb = NAN, .elapsed_s = 1,
	};
	return in;
}

static bool fires(enum doctor_kind k, const struct doctor_input *in, double share)
{
	struct doctor_finding f;
	return doctor_check(k, in, share, &f);
}

static void healthy_pool_has_no_finding(void)
{
	struct doctor_input in = healthy();
	struct doctor_state st = {0};
	struct doctor_changes ch;
	for (int i = 0; i < 10; i++) {
		in.stall_ns = 0;
		doctor_step(&st, &in, (uint64_t)i * 1000000000ull, &ch);
	}
	for (int k = 0; k < DOC_NKINDS; k++)
		CHECK(!st.active[k]);
}

static void contention(void)
{
	/* the seed: 40 workers x 45 threads, ~100k switches/s, load far above 2 cores */
	struct doctor_input in = healthy();
	in.worker_class = 1, in.workers = 40, in.threads_max = 45, in.rps = 50;
	in.vcsw_s = 100000, in.cpu = 1.2, in.load1 = 100;
	struct doctor_finding f;
	CHECK(doctor_check(DOC_CONTENTION, &in, NAN, &f));
	CHECK(strstr(f.evidence, "100000 voluntary switches/s") != NULL);
	CHECK(strstr(f.advice, "threads = 4") != NULL);
	/* its threads are runnable all the time: not oversubscription as well */
	in.runnable = 100, in.ivcsw_s = 2000, in.runq_wait = 20;
	CHECK(!fires(DOC_OVERSUBSCRIBED, &in, NAN));
	in.runnable = 3, in.ivcsw_s = 150, in.runq_wait = 0.2;
	/* near the thresholds, healthy */
	in.threads_max = DOC_CONT_MIN_THREADS - 1;
	CHECK(!fires(DOC_CONTENTION, &in, NAN));
	in.threads_max = 45, in.vcsw_s = DOC_CONT_VCSW_PER_CPU * in.cpus - 1;
	CHECK(!fires(DOC_CONTENTION, &in, NAN));
	/* many switches, but each is a request's worth: a busy healthy thread pool */
	in.vcsw_s = 100000, in.rps = 100000 / DOC_CONT_VCSW_PER_REQ + 100;
	CHECK(!fires(DOC_CONTENTION, &in, NAN));
	/* switches that do real work each are not contention */
	in.rps = 50, in.cpu = 100000 * DOC_CONT_CPU_PER_SWITCH_US / 1e6 + 0.1;
	CHECK(!fires(DOC_CONTENTION, &in, NAN));
}

static void oversubscription(void)
{
	struct doctor_input in = healthy();
	in.workers = 40, in.runnable = 40, in.ivcsw_s = 2000, in.runq_wait = 30, in.cpu = 2;
	struct doctor_finding f;
	CHECK(doctor_check(DOC_OVERSUBSCRIBED, &in, NAN, &f));
	CHECK(strstr(f.advice, "workers = 3") != NULL); /* sync: CPUs + 1 */
	in.runnable = (unsigned)(DOC_OVER_RUNNABLE_X * in.cpus); /* not above */
	CHECK(!fires(DOC_OVERSUBSCRIBED, &in, NAN));
	in.runnable = 40, in.runq_wait = DOC_OVER_RUNQ * in.cpus - 0.01;
	CHECK(!fires(DOC_OVERSUBSCRIBED, &in, NAN));
}

static void blocked_loop(void)
{
	struct doctor_input in = healthy();
	in.worker_class = 2;
	strcpy(in.top_site[0], "resolve_host (app.py:41)");
	in.top_share[0] = 0.9;
	strcpy(in.top_site[1], "query (db.py:7)");
	in.top_share[1] = 0.1;
	struct doctor_finding f;
	CHECK(doctor_check(DOC_BLOCKED_LOOP, &in, 0.25, &f));
	CHECK(strstr(f.evidence, "25.0% of the time") && strstr(f.evidence, "resolve_host (app.py:41) (90%)"));
	CHECK(strstr(f.advice, "move resolve_host (app.py:41) off the loop") != NULL);
	CHECK(!fires(DOC_BLOCKED_LOOP, &in, DOC_LOOP_STALL_SHARE / 2));
	in.worker_class = WORKER_ASGI; /* an async def handler blocking the asyncio loop */
	CHECK(doctor_check(DOC_BLOCKED_LOOP, &in, 0.25, &f));
	CHECK(strstr(f.advice, "resolve_host (app.py:41) blocks the asyncio loop") &&
	      strstr(f.advice, "run_in_executor") && strstr(f.advice, "worker_class = thread"));
	in.worker_class = 1; /* slow requests in threads are not a blocked loop */
	CHECK(!fires(DOC_BLOCKED_LOOP, &in, 0.25));
}

static void io_blocked(void)
{
	struct doctor_input in = healthy();
	in.dstate = 3, in.wchan_n = 3;
	strcpy(in.wchan, "nfs_wait_bit_killable");
	struct doctor_finding f;
	CHECK(doctor_check(DOC_IO_BLOCKED, &in, NAN, &f));
	CHECK(strstr(f.evidence, "3 of them in nfs_wait_bit_killable") != NULL);
	in.dstate = 1, in.wchan_n = 1;
	CHECK(!fires(DOC_IO_BLOCKED, &in, NAN));
	/* pressure with a high load but busy CPUs: not I/O-bound */
	in.psi_io = 50, in.load1 = 10, in.cpu = 1.5;
	CHECK(!fires(DOC_IO_BLOCKED, &in, NAN));
	in.cpu = 0.2;
	CHECK(fires(DOC_IO_BLOCKED, &in, NAN));
}

static void throttled(void)
{
	struct doctor_input in = healthy();
	in.has_quota = true, in.quota_cpus = 0.5, in.cpus = 0.5, in.throttled_frac = 0.8;
	struct doctor_finding f;
	CHECK(doctor_check(DOC_THROTTLED, &in, NAN, &f));
	CHECK(strstr(f.evidence, "CPU quota 0.50 CPUs; 80% of CFS periods") != NULL);
	CHECK(strstr(f.advice, "workers = 1") != NULL);
	in.throttled_frac = DOC_THROTTLE_FRAC - 0.01;
	CHECK(!fires(DOC_THROTTLED, &in, NAN));
	in.has_quota = false, in.throttled_frac = 0.9;
	CHECK(!fires(DOC_THROTTLED, &in, NAN));
}

static void memory(void)
{
	struct doctor_input in = healthy();
	in.psi_mem = DOC_MEM_PSI_PCT - 0.1;
	CHECK(!fires(DOC_MEMORY, &in, NAN));
	in.swap_pages_s = 500;
	CHECK(fires(DOC_MEMORY, &in, NAN));
	/* RSS growth is evidence, not a trigger: alone it fires nothing. */
	struct doctor_finding f;
	in.rss_growth_mb = 40;
	CHECK(doctor_check(DOC_MEMORY, &in, NAN, &f));
	CHECK(strstr(f.evidence, "500 pages swapped per second") != NULL);
	CHECK(strstr(f.evidence, "RSS +40 MB") != NULL);
	in.swap_pages_s = DOC_MEM_SWAP_PAGES - 1;
	CHECK(!fires(DOC_MEMORY, &in, NAN));
}

static void queueing(void)
{
	struct doctor_input in = healthy();
	in.busy = 3, in.queued = 12, in.rps = 400, in.mean_latency_s = 0.02; /* needs 8 */
	struct doctor_finding f;
	CHECK(doctor_check(DOC_QUEUEING, &in, NAN, &f));
	CHECK(strstr(f.advice, "workers = 8") != NULL);
	in.autoscale_note = "autoscaling is adding workers (target 8)";
	CHECK(doctor_check(DOC_QUEUEING, &in, NAN, &f));
	CHECK(strstr(f.advice, "autoscaling is adding") != NULL);
	in.busy = 2; /* a worker free: the queue drains */
	CHECK(!fires(DOC_QUEUEING, &in, NAN));
	in.busy = 3, in.queued = 0;
	CHECK(!fires(DOC_QUEUEING, &in, NAN));
	in.queued = 12, in.busy = -1u; /* unknown (attach) */
	CHECK(!fires(DOC_QUEUEING, &in, NAN));
}

static void fragmentation_slot(void)
{
	struct doctor_input in = healthy();
	CHECK(!fires(DOC_FRAGMENTATION, &in, NAN));
	in.fragmentation = "worker 2: RSS +300 MB while its heap in use stayed at 40 MB";
	CHECK(fires(DOC_FRAGMENTATION, &in, NAN));
}

static void hold_off(void)
{
	struct doctor_input bad = healthy();
	bad.has_quota = true, bad.quota_cpus = 1, bad.throttled_frac = 0.5;
	struct doctor_input good = healthy();
	struct doctor_state st = {0};
	struct doctor_changes ch;
	uint64_t t = 0;
	for (int i = 0; i < DOCTOR_HOLD - 1; i++) {
		doctor_step(&st, &bad, t += 1000000000ull, &ch);
		CHECK(!ch.appeared[DOC_THROTTLED] && !st.active[DOC_THROTTLED]);
	}
	doctor_step(&st, &good, t += 1000000000ull, &ch); /* a gap: start again */
	for (int i = 0; i < DOCTOR_HOLD - 1; i++)
		doctor_step(&st, &bad, t += 1000000000ull, &ch);
	CHECK(!st.active[DOC_THROTTLED]);
	doctor_step(&st, &bad, t += 1000000000ull, &ch);
	CHECK(ch.appeared[DOC_THROTTLED] && st.active[DOC_THROTTLED]);
	CHECK(st.since_ns[DOC_THROTTLED] == t);
	for (int i = 0; i < DOCTOR_HOLD - 1; i++) {
		doctor_step(&st, &good, t += 1000000000ull, &ch);
		CHECK(st.active[DOC_THROTTLED] && !ch.cleared[DOC_THROTTLED]);
	}
	doctor_step(&st, &good, t += 1000000000ull, &ch);
	CHECK(ch.cleared[DOC_THROTTLED] && !st.active[DOC_THROTTLED]);
}

static void stall_share_from_series(void)
{
	/* event workers stalled 300 ms of each second, by cumulative stall_ns */
	struct doctor_input in = healthy();
	in.worker_class = 2, in.workers = 1;
	strcpy(in.top_site[0], "resolve_host (blocker.so+0x11bb)");
	in.top_share[0] = 1;
	struct doctor_state st = {0};
	struct doctor_changes ch;
	for (int i = 0; i <= DOCTOR_HOLD; i++) {
		in.stall_ns = (uint64_t)i * 300000000ull;
		doctor_step(&st, &in, (uint64_t)(i + 1) * 1000000000ull, &ch);
	}
	CHECK(st.active[DOC_BLOCKED_LOOP]);
	CHECK(strstr(st.last[DOC_BLOCKED_LOOP].evidence, "30.0%") != NULL);
}

/* One event loop stuck in a single stall that has not ended (issue 10 gap
 * a): its time so far counts, so the finding appears while it lasts. */
static void one_long_ongoing_stall(void)
{
	struct sampler *s = calloc(1, sizeof(*s));
	struct drover_conf conf;
	conf_defaults(&conf);
	conf.worker_class = WORKER_EVENT;
	s->host.online_cpus = 2;
	struct worker_view *v = &s->w[0];
	v->p.pid = 42;
	v->stall.stalls = 1;
	v->stall.nsites = 1;
	strcpy(v->stall.sites[0].name, "resolve_host (blocker.c:27)");
	v->stall.sites[0].count = 1;
	struct doctor_state st = {0};
	struct doctor_changes ch;
	uint64_t start = 1000000000ull;
	for (int i = 1; i <= DOCTOR_HOLD + 1; i++) {
		uint64_t now = start + (uint64_t)i * 1000000000ull;
		v->stall.ongoing = 1;
		v->stall.ongoing_ns = v->stall.sites[0].ongoing_ns = now - start;
		s->stall = v->stall;
		s->master.interval_s = 1;
		struct doctor_input in;
		doctor_input_from_sampler(s, &conf, &in);
		CHECK(in.stall_ns == now - start && in.top_share[0] == 1);
		doctor_step(&st, &in, now, &ch);
	}
	CHECK(st.active[DOC_BLOCKED_LOOP]);
	CHECK(strstr(st.last[DOC_BLOCKED_LOOP].evidence, "100.0% of the time") != NULL);
	CHECK(strstr(st.last[DOC_BLOCKED_LOOP].evidence, "resolve_host (blocker.c:27) (100%)"));
	free(s);
}

int main(void)
{
	RUN(healthy_pool_has_no_finding);
	RUN(contention);
	RUN(oversubscription);
	RUN(blocked_loop);
	RUN(io_blocked);
	RUN(throttled);
	RUN(memory);
	RUN(queueing);
	RUN(fragmentation_slot);
	RUN(hold_off);
	RUN(stall_share_from_series);
	RUN(one_long_ongoing_stall);
	return check_summary();
}
