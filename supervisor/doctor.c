/* `drover doctor`'s decisions (see doctor.h): one pure check per finding,
 * the hold-off around them, and the pool's figures taken from a sampler.
 * The seeds are the incidents of DESIGN.md: 40 workers x 45 threads making
 * 100k switches/s (contention), 40 workers on 2 cores (oversubscription), a
 * reactor paused by a blocking call (blocked loop), a CFS quota turned into
 * a load of 100 with idle CPUs (throttling). */
#include "supervisor/doctor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[DOC_NKINDS] = {
	"contention", "oversubscription", "blocked_loop", "io_blocked",
	"cpu_throttled", "memory_pressure", "queueing", "fragmentation",
};

const char *doctor_kind_name(enum doctor_kind k)
{
	return k < DOC_NKINDS ? kind_names[k] : "?";
}

static unsigned round_cpus(double cpus)
{
	unsigned n = (unsigned)(cpus + 0.5);
	return n ? n : 1;
}

/* Many threads switching voluntarily all the time, each switch doing almost
 * no work: they fight over a lock (the GIL) or poll in short sleeps. */
static bool check_contention(const struct doctor_input *in, struct doctor_finding *f)
{
	if (in->threads_max < DOC_CONT_MIN_THREADS || !(in->vcsw_s >= DOC_CONT_VCSW_PER_CPU * in->cpus))
		return false;
	double per_req = in->rps > 0 ? in->vcsw_s / in->rps : INFINITY;
	double us_per_switch = in->cpu / in->vcsw_s * 1e6;
	if (per_req < DOC_CONT_VCSW_PER_REQ || !(us_per_switch < DOC_CONT_CPU_PER_SWITCH_US))
		return false;
	char req[48] = "no requests";
	if (isnan(in->rps))
		snprintf(req, sizeof(req), "requests not counted");
	else if (!isinf(per_req))
		snprintf(req, sizeof(req), "%.0f per request", per_req);
	snprintf(f->evidence, DOCTOR_TEXT,
		 "%u workers x up to %u threads make %.0f voluntary switches/s (%s) "
		 "with %.1f us of CPU each, on %.1f usable CPUs; load %.1f",
		 in->workers, in->threads_max, in->vcsw_s, req, us_per_switch, in->cpus, in->load1);
	unsigned t = in->threads_max / 4 > 4 ? 4 : in->threads_max / 4 ? in->threads_max / 4 : 1;
	snprintf(f->advice, DOCTOR_TEXT,
		 "threads = %u (threads wait on each other, not on work), or find the threads that "
		 "poll in short sleeps (the busiest thread ids are in drover ctl status)",
		 t);
	return true;
}

static bool check_oversubscribed(const struct doctor_input *in, struct doctor_finding *f)
{
	double runq_per_cpu = in->runq_wait / in->cpus;
	if (!((double)in->runnable > DOC_OVER_RUNNABLE_X * in->cpus) ||
	    !(in->ivcsw_s >= DOC_OVER_IVCSW_PER_CPU * in->cpus) || !(runq_per_cpu >= DOC_OVER_RUNQ))
		return false;
	snprintf(f->evidence, DOCTOR_TEXT,
		 "%u tasks runnable on %.1f usable CPUs, %.0f involuntary switches/s, workers wait "
		 "%.0f ms per second for a CPU",
		 in->runnable, in->cpus, in->ivcsw_s, 1000 * in->runq_wait);
	snprintf(f->advice, DOCTOR_TEXT,
		 "workers = %u (near the usable CPUs: more only wait their turn)%s",
		 round_cpus(in->cpus) + (in->worker_class == 0 ? 1 : 0),
		 in->worker_class == 1 && in->threads_max > 2 ? ", and fewer threads" : "");
	return true;
}

static bool check_blocked_loop(const struct doctor_input *in, double share,
			       struct doctor_finding *f)
{
	bool asgi = in->worker_class == WORKER_ASGI;
	if ((in->worker_class != WORKER_EVENT && !asgi) || !(share >= DOC_LOOP_STALL_SHARE) ||
	    !in->top_site[0][0])
		return false;
	size_t o = (size_t)snprintf(f->evidence, DOCTOR_TEXT,
				    "event loops stalled %.1f%% of the time; top blocking sites:",
				    100 * share);
	for (int i = 0; i < 3 && in->top_site[i][0] && o < DOCTOR_TEXT; i++)
		o += (size_t)snprintf(f->evidence + o, DOCTOR_TEXT - o, "%s %s (%.0f%%)",
				      i ? "," : "", in->top_site[i], 100 * in->top_share[i]);
	if (asgi) /* a blocking call inside an async def handler */
		snprintf(f->advice, DOCTOR_TEXT,
			 "%s blocks the asyncio loop: await it through loop.run_in_executor() "
			 "(or use an async driver), or serve the app as WSGI with worker_class = "
			 "thread",
			 in->top_site[0]);
	else
		snprintf(f->advice, DOCTOR_TEXT,
			 "move %s off the loop (a thread pool, a non-blocking client), or use "
			 "worker_class = thread",
			 in->top_site[0]);
	return true;
}

static bool check_io(const struct doctor_input *in, struct doctor_finding *f)
{
	bool dstate = in->dstate >= DOC_IO_MIN_WORKERS && in->wchan_n >= DOC_IO_MIN_WORKERS;
	bool psi = in->psi_io >= DOC_IO_PSI_PCT && in->load1 > 2 * in->cpus &&
		   in->cpu < 0.5 * in->cpus;
	if (!dstate && !psi)
		return false;
	snprintf(f->evidence, DOCTOR_TEXT,
		 "%u workers in uninterruptible sleep, %u of them in %s; I/O pressure %.1f%%, "
		 "load %.1f with %.2f CPUs busy",
		 in->dstate, in->wchan_n, in->wchan[0] ? in->wchan : "?",
		 isnan(in->psi_io) ? 0 : in->psi_io, in->load1, in->cpu);
	snprintf(f->advice, DOCTOR_TEXT,
		 "the workers wait on the kernel (%s): more workers only queue on it; look at the "
		 "device or file system behind it",
		 in->wchan[0] ? in->wchan : "I/O");
	return true;
}

static bool check_throttled(const struct doctor_input *in, struct doctor_finding *f)
{
	if (!in->has_quota || !(in->throttled_frac >= DOC_THROTTLE_FRAC))
		return false;
	snprintf(f->evidence, DOCTOR_TEXT,
		 "CPU quota %.2f CPUs; %.0f%% of CFS periods throttled; %u workers; CPU pressure "
		 "%.1f%%",
		 in->quota_cpus, 100 * in->throttled_frac, in->workers,
		 isnan(in->psi_cpu) ? 0 : in->psi_cpu);
	unsigned w = (unsigned)ceil(in->quota_cpus);
	snprintf(f->advice, DOCTOR_TEXT,
		 "workers = %u (fits the quota), or raise the quota (cpu.max / cfs_quota_us)", w ? w : 1);
	return true;
}

static bool check_memory(const struct doctor_input *in, struct doctor_finding *f)
{
	if (!(in->psi_mem >= DOC_MEM_PSI_PCT) && !(in->swap_pages_s >= DOC_MEM_SWAP_PAGES))
		return false;
	int n = snprintf(f->evidence, DOCTOR_TEXT, "memory pressure %.1f%%, %.0f pages swapped per second",
			 isnan(in->psi_mem) ? 0 : in->psi_mem,
			 isnan(in->swap_pages_s) ? 0 : in->swap_pages_s);
	if (!isnan(in->rss_growth_mb) && n > 0 && n < DOCTOR_TEXT)
		snprintf(f->evidence + n, DOCTOR_TEXT - (size_t)n,
			 ", workers' RSS %+.0f MB over their baselines", in->rss_growth_mb);
	snprintf(f->advice, DOCTOR_TEXT,
		 "workers = %u (fewer processes), or max_requests to bound each worker's growth",
		 in->workers > 1 ? in->workers - 1 : 1);
	return true;
}

static bool check_queueing(const struct doctor_input *in, struct doctor_finding *f)
{
	if (in->queued < DOC_QUEUE_MIN || in->busy == -1u || in->busy < in->workers || !in->workers)
		return false;
	/* Little's law: workers needed = arrival rate x service time. */
	double need = in->rps * in->mean_latency_s;
	unsigned w = isnan(need) || need < in->workers + 1 ? in->workers + 1 : (unsigned)ceil(need);
	snprintf(f->evidence, DOCTOR_TEXT,
		 "%d connections wait in the listen queue while all %u workers are busy (%.0f req/s)",
		 in->queued, in->workers, in->rps);
	if (in->autoscale_note)
		snprintf(f->advice, DOCTOR_TEXT, "the pool is too small: %s", in->autoscale_note);
	else
		snprintf(f->advice, DOCTOR_TEXT, "the pool is too small: workers = %u%s", w,
			 in->worker_class == 1 ? " (or more threads)" : "");
	return true;
}

static bool check_fragmentation(const struct doctor_input *in, struct doctor_finding *f)
{
	if (!in->fragmentation) /* no verdict (yet): not shown */
		return false;
	snprintf(f->evidence, DOCTOR_TEXT, "%s", in->fragmentation);
	snprintf(f->advice, DOCTOR_TEXT,
		 "set rss_growth_limit (drover then trims the heap, and recycles the worker "
		 "gracefully if that is not enough), or max_requests");
	return true;
}

bool doctor_check(enum doctor_kind k, const struct doctor_input *in, double stall_share,
		  struct doctor_finding *f)
{
	memset(f, 0, sizeof(*f));
	f->kind = k;
	if (!(in->cpus > 0))
		return false;
	switch (k) {
	case DOC_CONTENTION: return check_contention(in, f);
	case DOC_OVERSUBSCRIBED: {
		/* Threads that switch all the time are runnable all the time:
		 * then contention is the diagnosis, and fewer workers the wrong cure. */
		struct doctor_finding c;
		return !check_contention(in, &c) && check_oversubscribed(in, f);
	}
	case DOC_BLOCKED_LOOP: return check_blocked_loop(in, stall_share, f);
	case DOC_IO_BLOCKED: return check_io(in, f);
	case DOC_THROTTLED: return check_throttled(in, f);
	case DOC_MEMORY: return check_memory(in, f);
	case DOC_QUEUEING: return check_queueing(in, f);
	case DOC_FRAGMENTATION: return check_fragmentation(in, f);
	default: return false;
	}
}

/* Stall time over loop time in the interval since the previous sample. */
static double stall_share(struct doctor_state *st, const struct doctor_input *in)
{
	double share = NAN;
	if (st->has_prev && in->elapsed_s > 0 && in->workers && in->stall_ns >= st->prev_stall_ns)
		share = (double)(in->stall_ns - st->prev_stall_ns) / 1e9 /
			(in->elapsed_s * in->workers);
	if (share > 1) /* elapsed_s is the nominal interval: a late tick overshoots */
		share = 1;
	st->prev_stall_ns = in->stall_ns;
	st->prev_stalls = in->stalls;
	st->has_prev = true;
	return share;
}

void doctor_step(struct doctor_state *st, const struct doctor_input *in, uint64_t now,
		 struct doctor_changes *ch)
{
	memset(ch, 0, sizeof(*ch));
	double share = stall_share(st, in);
	st->samples++;
	for (int k = 0; k < DOC_NKINDS; k++) {
		struct doctor_finding f;
		bool yes = doctor_check((enum doctor_kind)k, in, share, &f);
		st->on[k] = yes ? st->on[k] + 1 : 0;
		st->off[k] = yes ? 0 : st->off[k] + 1;
		if (yes && (st->active[k] || st->on[k] >= DOCTOR_HOLD))
			st->last[k] = f; /* the latest figures while it holds */
		if (!st->active[k] && st->on[k] >= DOCTOR_HOLD) {
			st->active[k] = ch->appeared[k] = true;
			st->since_ns[k] = now;
		} else if (st->active[k] && st->off[k] >= DOCTOR_HOLD) {
			st->active[k] = false;
			ch->cleared[k] = true;
		}
	}
}

/* The most common wait channel among workers in D state. */
static void top_wchan(const struct sampler *s, struct doctor_input *in)
{
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v) || !v->p.wchan[0])
			continue;
		unsigned n = 0;
		for (size_t j = 0; j < SB_MAX_SLOTS; j++)
			n += sample_live(&s->w[j]) && strcmp(s->w[j].p.wchan, v->p.wchan) == 0;
		if (n > in->wchan_n) {
			in->wchan_n = n;
			snprintf(in->wchan, sizeof(in->wchan), "%s", v->p.wchan);
		}
	}
}

static void stall_sites(const struct sampler *s, struct doctor_input *in)
{
	const struct stall_site_view *top[3];
	unsigned n = stallstat_sorted(&s->stall, top, 3);
	for (unsigned i = 0; i < n; i++) {
		snprintf(in->top_site[i], SB_SITE_LEN, "%s", top[i]->name);
		uint64_t all = stallstat_time(&s->stall);
		in->top_share[i] = all ? (double)(top[i]->total_ns + top[i]->ongoing_ns) / (double)all : 0;
	}
}

void doctor_input_from_sampler(const struct sampler *s, const struct drover_conf *conf,
			       struct doctor_input *in)
{
	const struct pool_figures *pf = &s->pool;
	const struct host_view *h = &s->host;
	memset(in, 0, sizeof(*in));
	in->worker_class = conf->worker_class;
	in->cpus = h->effective_cpus > 0 ? h->effective_cpus : h->online_cpus;
	in->rps = pf->rps;
	in->cpu = pf->cpu;
	in->vcsw_s = pf->vcsw_s;
	in->ivcsw_s = pf->ivcsw_s;
	in->runq_wait = pf->runq_wait;
	in->mean_latency_s = pf->mean;
	in->runnable = h->has_load ? h->load.runnable : 0;
	in->load1 = h->has_load ? h->load.load1 : NAN;
	in->psi_cpu = h->psi[0].present ? h->psi_some_pct[0] : NAN;
	in->psi_io = h->psi[1].present ? h->psi_some_pct[1] : NAN;
	in->psi_mem = h->psi[2].present ? h->psi_some_pct[2] : NAN;
	in->has_quota = h->has_cg_max && h->cg_max.quota_us != CG_QUOTA_NONE;
	in->quota_cpus = in->has_quota ? cg_effective_cpus(&h->cg_max, h->online_cpus) : NAN;
	in->throttled_frac = h->has_cg_stat && h->cg_stat.has_throttling ? h->cg_rates.throttled_frac : NAN;
	in->swap_pages_s = h->swap_pages_s;
	in->rss_growth_mb = NAN;
	in->elapsed_s = s->master.interval_s;
	in->stalls = s->stall.stalls;
	/* a stall still in progress counts for its time so far: one long
	 * stall that never ends is the worst blocked loop of all */
	in->stall_ns = stallstat_time(&s->stall);
	in->queued = -1;
	for (size_t i = 0; i < s->nl; i++)
		if (s->l[i].ok)
			in->queued = (in->queued < 0 ? 0 : in->queued) + (int)s->l[i].queued;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v) || v->stopping)
			continue;
		in->workers++;
		if (v->mem.base_rss) /* a recycle baseline: growth is known */
			in->rss_growth_mb = (isnan(in->rss_growth_mb) ? 0 : in->rss_growth_mb) +
					    (double)v->mem.rss_growth / 1048576.0;
		/* busy: no request slot left (one, or `threads` in the thread model) */
		in->busy += v->inflight >= (conf->worker_class == WORKER_THREAD
						     ? (unsigned)conf->threads : 1u);
		in->dstate += v->p.valid && v->p.proc.stat.state == 'D';
		unsigned t = v->p.valid ? (unsigned)v->p.proc.stat.num_threads : 0;
		in->threads_max = t > in->threads_max ? t : in->threads_max;
	}
	top_wchan(s, in);
	stall_sites(s, in);
}
