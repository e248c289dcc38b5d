/* The status of the master and its workers, rendered from the sampler's last
 * pass: the JSON of `drover ctl --json status` and /status.json, and the
 * human table `drover ctl status` prints.  Pure over a struct sampler: no
 * I/O, no clock. */
#include "supervisor/stallout.h"
#include "supervisor/status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drover_config.h"
#include "supervisor/autoscale_show.h"
#include "supervisor/recycle.h"
#include "supervisor/sample.h"

/* ---- status JSON ---- */

static void jnum(struct mbuf *b, const char *key, double v, bool comma)
{
	mbuf_printf(b, "%s\"%s\":", comma ? "," : "", key);
	mbuf_json_num(b, v);
}

static void jstr(struct mbuf *b, const char *key, const char *v, bool comma)
{
	mbuf_printf(b, "%s\"%s\":", comma ? "," : "", key);
	mbuf_json_str(b, v);
}

static double ms(double s)
{
	return s * 1e3;
}

/* Figures over the last interval, null until a worker has been read twice. */
static void json_rates(struct mbuf *b, const struct worker_view *v)
{
	const struct worker_figures *f = &v->fig;
	double nan = NAN;
	bool h = v->has_figures;
	jnum(b, "rps", h ? f->rps : nan, true);
	jnum(b, "p50_ms", h ? ms(f->p50) : nan, true);
	jnum(b, "p95_ms", h ? ms(f->p95) : nan, true);
	jnum(b, "p99_ms", h ? ms(f->p99) : nan, true);
	jnum(b, "window_requests", h ? (double)f->window_requests : nan, true);
	jnum(b, "util", h ? f->util : nan, true);
	jnum(b, "cpu_pct", h ? 100 * f->cpu : nan, true);
	jnum(b, "cpu_user_pct", h ? 100 * f->cpu_user : nan, true);
	jnum(b, "cpu_sys_pct", h ? 100 * f->cpu_sys : nan, true);
	jnum(b, "cpu_ms_per_req", h && f->rps > 0 ? f->cpu_ms_req : nan, true);
	jnum(b, "vcsw_per_s", h ? f->vcsw_s : nan, true);
	jnum(b, "ivcsw_per_s", h ? f->ivcsw_s : nan, true);
	jnum(b, "vcsw_per_req", h && f->rps > 0 ? f->vcsw_req : nan, true);
	jnum(b, "ivcsw_per_req", h && f->rps > 0 ? f->ivcsw_req : nan, true);
	jnum(b, "runq_wait_ms_per_s", h ? ms(f->runq_wait) : nan, true);
	jnum(b, "runq_wait_ms_per_req", h && f->rps > 0 ? f->runq_wait_ms_req : nan, true);
	jnum(b, "busiest_tid", h && f->busiest_tid ? f->busiest_tid : nan, true);
	jnum(b, "busiest_tid_csw_per_s", h && f->busiest_tid ? f->busiest_csw_s : nan, true);
}

/* The memory verdict (recycle.c) and its numbers; growth is against the
 * baseline taken after recycle_warmup (null before). */
static void json_memory(struct mbuf *b, const struct worker_view *v)
{
	bool base = v->mem.base_rss != 0;
	mbuf_put(b, ",\"memory\":{", 11);
	jstr(b, "verdict", recycle_verdict_name((enum recycle_verdict)v->mem.verdict), false);
	jnum(b, "baseline_kb", base ? (double)v->mem.base_rss / 1024 : NAN, true);
	jnum(b, "rss_growth_kb", base ? (double)v->mem.rss_growth / 1024 : NAN, true);
	jnum(b, "in_use_growth_kb", base ? (double)v->mem.in_use_growth / 1024 : NAN, true);
	jnum(b, "free_growth_kb", base ? (double)v->mem.free_growth / 1024 : NAN, true);
	jnum(b, "trim_returned_kb", (double)v->mem.trim_returned / 1024, true);
	jnum(b, "py_arena_kb", (double)v->py_arena / 1024, true);
	jnum(b, "py_blocks", (double)v->py_blocks, true);
	mbuf_put(b, "}", 1);
}

static void json_worker(struct mbuf *b, const struct sampler *s, const struct worker_view *v)
{
	const struct proc_view *p = &v->p;
	char st[2] = {p->valid ? p->proc.stat.state : '?', 0};
	mbuf_printf(b, "{\"no\":%u,\"pid\":%d,\"generation\":%u", v->no, (int)p->pid, v->generation);
	jnum(b, "age_s", sample_age_s(s, v->spawned_ns), true);
	jstr(b, "state", v->stopping ? "stopping" : sample_sb_state_name(v->sb_state), true);
	jstr(b, "proc_state", st, true);
	jstr(b, "wchan", p->wchan, true);
	jnum(b, "requests", (double)v->requests, true);
	jnum(b, "inflight", v->inflight, true);
	jnum(b, "connections", v->connections, true);
	jnum(b, "accepted", (double)v->accepted, true);
	json_rates(b, v);
	jnum(b, "threads", p->valid ? (double)p->proc.stat.num_threads : NAN, true);
	jnum(b, "vcsw_total", (double)p->vcsw_total, true);
	jnum(b, "ivcsw_total", (double)p->ivcsw_total, true);
	jnum(b, "rss_kb", p->valid ? (double)p->proc.status.vm_rss_kb : NAN, true);
	jnum(b, "pss_kb", p->has_smaps ? (double)p->smaps.pss_kb : NAN, true);
	jnum(b, "private_dirty_kb", p->has_smaps ? (double)p->smaps.private_dirty_kb : NAN, true);
	jnum(b, "anonymous_kb", p->has_smaps ? (double)p->smaps.anonymous_kb : NAN, true);
	jnum(b, "heap_in_use_kb", (double)v->heap_in_use / 1024, true);
	jnum(b, "heap_free_kb", (double)v->heap_free / 1024, true);
	jnum(b, "sample_cost_us", (double)p->cost_ns / 1e3, true);
	stallout_json_worker(s, v, b);
	json_memory(b, v);
	mbuf_put(b, "}", 1);
}

static void json_master(struct mbuf *b, const struct sampler *s)
{
	const struct master_view *m = &s->master;
	const struct pool_figures *pf = &s->pool;
	mbuf_printf(b, "\"master\":{\"pid\":%d", (int)m->pid);
	jstr(b, "version", DROVER_VERSION, true);
	jstr(b, "state", m->state ? m->state : "?", true);
	jnum(b, "age_s", sample_age_s(s, m->started_ns), true);
	jnum(b, "generation", m->generation, true);
	jnum(b, "target", m->target, true);
	jnum(b, "live", m->live, true);
	jnum(b, "ready", m->booted, true);
	jnum(b, "cpu_pct", 100 * s->self_rates.oncpu, true);
	jnum(b, "rss_kb", (double)s->self.proc.status.vm_rss_kb, true);
	jnum(b, "rps", pf->rps, true);
	jnum(b, "p50_ms", ms(pf->p50), true);
	jnum(b, "p95_ms", ms(pf->p95), true);
	jnum(b, "p99_ms", ms(pf->p99), true);
	jnum(b, "pool_cpu_pct", 100 * pf->cpu, true);
	jnum(b, "pool_util", pf->util_mean, true);
	jnum(b, "pool_vcsw_per_s", pf->vcsw_s, true);
	jnum(b, "pool_ivcsw_per_s", pf->ivcsw_s, true);
	jnum(b, "sample_interval_s", m->interval_s, true);
	jnum(b, "smaps_interval_s", m->smaps_interval_s, true);
	jnum(b, "sampler_last_pass_us", (double)s->last_pass_ns / 1e3, true);
	jnum(b, "sampler_last_pass_cpu_us", (double)s->last_pass_cpu_ns / 1e3, true);
	jnum(b, "sampler_cost_us_per_worker", s->cost_us_per_worker, true);
	jnum(b, "sampler_max_pass_us", (double)s->max_pass_ns / 1e3, true);
	jstr(b, "sampler_threads_from", s->ts_used ? "taskstats" : "proc", true);
	static const char *const why[RECYCLE_WHY_N] = RECYCLE_WHY_NAMES;
	mbuf_put(b, ",\"recycled\":{", 13);
	for (int k = 0; k < RECYCLE_WHY_N; k++) /* graceful replaces begun, by reason */
		jnum(b, why[k], (double)m->recycled[k], k > 0);
	mbuf_put(b, "}}", 2);
}

static void json_host(struct mbuf *b, const struct sampler *s)
{
	static const char *const res[3] = {"cpu", "io", "memory"};
	const struct host_view *h = &s->host;
	mbuf_printf(b, ",\"host\":{\"online_cpus\":%u", h->online_cpus);
	jnum(b, "effective_cpus", h->effective_cpus, true);
	mbuf_printf(b, ",\"affinity_cpus\":%u", h->affinity_cpus);
	jnum(b, "load1", h->has_load ? h->load.load1 : NAN, true);
	jnum(b, "load5", h->has_load ? h->load.load5 : NAN, true);
	jnum(b, "load15", h->has_load ? h->load.load15 : NAN, true);
	mbuf_put(b, ",\"pressure\":{", 13);
	for (int i = 0, n = 0; i < 3; i++) {
		if (!h->psi[i].present)
			continue;
		mbuf_printf(b, "%s\"%s\":{\"some_avg10\":", n++ ? "," : "", res[i]);
		mbuf_json_num(b, h->psi[i].some.avg10);
		jnum(b, "full_avg10", h->psi[i].has_full ? h->psi[i].full.avg10 : NAN, true);
		jnum(b, "some_pct_last", h->psi_some_pct[i], true);
		jnum(b, "full_pct_last", h->psi[i].has_full ? h->psi_full_pct[i] : NAN, true);
		mbuf_put(b, "}", 1);
	}
	mbuf_printf(b, "},\"cgroup\":{\"version\":%d", h->cg_version);
	jstr(b, "dir", h->cg_dir, true);
	bool q = h->has_cg_max && h->cg_max.quota_us != CG_QUOTA_NONE;
	jnum(b, "quota_cpus", q ? (double)h->cg_max.quota_us / (double)h->cg_max.period_us : NAN, true);
	bool t = h->has_cg_stat && h->cg_stat.has_throttling;
	jnum(b, "nr_throttled", t ? (double)h->cg_stat.nr_throttled : NAN, true);
	jnum(b, "throttled_s", t ? (double)h->cg_stat.throttled_us / 1e6 : NAN, true);
	jnum(b, "throttled_frac_last", t ? h->cg_rates.throttled_frac : NAN, true);
	mbuf_put(b, "}}", 2);
}

static void json_listeners(struct mbuf *b, const struct sampler *s)
{
	mbuf_put(b, ",\"listeners\":[", 14);
	for (size_t i = 0; i < s->nl; i++) {
		mbuf_put(b, i ? ",{" : "{", i ? 2 : 1);
		jstr(b, "name", s->l[i].name, false);
		jnum(b, "queued", s->l[i].ok ? s->l[i].queued : NAN, true);
		jnum(b, "limit", s->l[i].ok ? s->l[i].limit : NAN, true);
		mbuf_put(b, "}", 1);
	}
	mbuf_put(b, "]", 1);
}

/* Workers ordered by number, then pid (old generations after new). */
static size_t sorted_workers(const struct sampler *s, const struct worker_view **out)
{
	size_t n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (sample_live(&s->w[i]))
			out[n++] = &s->w[i];
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && (out[j - 1]->no > out[j]->no ||
					     (out[j - 1]->no == out[j]->no &&
					      out[j - 1]->p.pid > out[j]->p.pid)); j--) {
			const struct worker_view *t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

void status_json(const struct sampler *s, struct mbuf *out)
{
	static const struct worker_view *ws[SB_MAX_SLOTS];
	mbuf_put(out, "{", 1);
	json_master(out, s);
	json_host(out, s);
	json_listeners(out, s);
	stallout_json(s, out);
	autoscale_show_json(s, out);
	mbuf_put(out, ",\"workers\":[", 12);
	size_t n = sorted_workers(s, ws);
	for (size_t i = 0; i < n; i++) {
		if (i)
			mbuf_put(out, ",", 1);
		json_worker(out, s, ws[i]);
	}
	mbuf_put(out, "]}", 2);
}

/* ---- the table of `drover ctl status` ---- */

/* "-" for a figure not known yet. */
static void tcell(struct mbuf *b, const char *fmt, double v, int width)
{
	if (isfinite(v))
		mbuf_printf(b, fmt, width, v);
	else
		mbuf_printf(b, "%*s", width, "-");
}

static void table_worker(struct mbuf *b, const struct sampler *s, const struct worker_view *v)
{
	const struct worker_figures *f = &v->fig;
	const struct proc_view *p = &v->p;
	bool h = v->has_figures;
	double nan = NAN;
	mbuf_printf(b, "%3u %7d %7.0f %-8s %c %9llu", v->no, (int)p->pid, sample_age_s(s, v->spawned_ns),
		    v->stopping ? "stopping" : sample_sb_state_name(v->sb_state),
		    p->valid ? p->proc.stat.state : '?', (unsigned long long)v->requests);
	tcell(b, " %*.1f", h ? f->rps : nan, 7);
	tcell(b, " %*.2f", h ? ms(f->p50) : nan, 7);
	tcell(b, " %*.2f", h ? ms(f->p95) : nan, 7);
	tcell(b, " %*.2f", h ? ms(f->p99) : nan, 7);
	tcell(b, " %*.1f", h ? 100 * f->cpu : nan, 6);
	tcell(b, " %*.0f", p->valid ? (double)p->proc.status.vm_rss_kb / 1024 : nan, 6);
	tcell(b, " %*.1f", p->has_smaps ? (double)p->smaps.pss_kb / 1024 : nan, 6);
	tcell(b, " %*.0f", h ? f->vcsw_s : nan, 7);
	tcell(b, " %*.0f", h ? f->ivcsw_s : nan, 7);
	tcell(b, " %*.0f", p->valid ? (double)p->proc.stat.num_threads : nan, 4);
	tcell(b, " %*.2f", h ? ms(f->runq_wait) : nan, 8);
	if (p->wchan[0])
		mbuf_printf(b, "  wchan=%s", p->wchan);
	if (v->mem.base_rss)
		mbuf_printf(b, "  mem=%s (RSS %+.0f MB, in use %+.0f MB over %.0f MB)",
			    recycle_verdict_name((enum recycle_verdict)v->mem.verdict),
			    v->mem.rss_growth / 1048576.0, v->mem.in_use_growth / 1048576.0,
			    v->mem.base_rss / 1048576.0);
	mbuf_put(b, "\n", 1);
}

void status_table(const struct sampler *s, struct mbuf *out)
{
	static const struct worker_view *ws[SB_MAX_SLOTS];
	const struct master_view *m = &s->master;
	const struct pool_figures *pf = &s->pool;
	const struct host_view *h = &s->host;
	mbuf_printf(out, "master %d (%s), generation %u, up %.0f s: %u/%u workers ready, %u live\n",
		    (int)m->pid, m->state ? m->state : "?", m->generation, sample_age_s(s, m->started_ns),
		    m->booted, m->target, m->live);
	mbuf_printf(out, "pool: %.1f req/s, p50/p95/p99 ", pf->rps);
	tcell(out, "%*.2f", ms(pf->p50), 0);
	tcell(out, "/%*.2f", ms(pf->p95), 0);
	tcell(out, "/%*.2f ms", ms(pf->p99), 0);
	mbuf_printf(out, " (last %u samples), workers' CPU %.1f%%, master CPU %.2f%%\n",
		    STATS_WINDOW, 100 * pf->cpu, 100 * s->self_rates.oncpu);
	mbuf_printf(out, "host: load %.2f %.2f %.2f, %u CPUs online, %.2f usable", h->load.load1,
		    h->load.load5, h->load.load15, h->online_cpus, h->effective_cpus);
	if (h->psi[0].present)
		mbuf_printf(out, ", cpu pressure some %.1f%%", h->psi[0].some.avg10);
	if (h->has_cg_stat && h->cg_stat.has_throttling)
		mbuf_printf(out, ", throttled %.0f%% of periods", 100 * h->cg_rates.throttled_frac);
	mbuf_put(out, "\n", 1);
	for (size_t i = 0; i < s->nl; i++)
		if (s->l[i].ok)
			mbuf_printf(out, "listener %s: %u queued (limit %u)\n", s->l[i].name,
				    s->l[i].queued, s->l[i].limit);
	autoscale_show_table(s, out);
	mbuf_printf(out, "sampler: %.0f us per pass (max %.0f), %.1f us CPU per worker, threads from %s\n",
		    (double)s->last_pass_ns / 1e3, (double)s->max_pass_ns / 1e3,
		    s->cost_us_per_worker, s->ts_used ? "taskstats" : "/proc");
	stallout_table(s, out);
	mbuf_put(out, "\n", 1);
	mbuf_printf(out, "%3s %7s %7s %-8s %c %9s %7s %7s %7s %7s %6s %6s %6s %7s %7s %4s %8s\n", "no",
		    "pid", "age_s", "state", 'S', "requests", "req/s", "p50ms", "p95ms", "p99ms",
		    "cpu%", "rssMB", "pssMB", "vcsw/s", "ivcsw/s", "thr", "runqms/s");
	size_t n = sorted_workers(s, ws);
	for (size_t i = 0; i < n; i++)
		table_worker(out, s, ws[i]);
}
