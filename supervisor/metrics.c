/* Prometheus text exposition (format 0.0.4) of the sampler's last pass.
 * Metric names follow the Prometheus conventions: base units (seconds,
 * bytes), _total for counters, one family per quantity with labels for its
 * parts.  Pure over a struct sampler: no I/O, no clock. */
#include "supervisor/doctor_out.h"
#include "supervisor/stallout.h"
#include "supervisor/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover_config.h"
#include "supervisor/autoscale_show.h"
#include "supervisor/fdlimit.h"
#include "supervisor/recycle.h"
#include "supervisor/sample.h"

/* ---- helpers over the sampler ---- */

static double cpu_seconds(const struct sampler *s, uint64_t ticks)
{
	return (double)ticks / (double)(s->clk_tck > 0 ? s->clk_tck : 100);
}

static void prom_num(struct mbuf *b, double v)
{
	if (isnan(v))
		mbuf_put(b, "NaN", 3);
	else if (isinf(v))
		mbuf_put(b, v > 0 ? "+Inf" : "-Inf", 4);
	else {
		/* The shortest of %.15g / %.17g that reads back as the same double. */
		char t[40];
		snprintf(t, sizeof(t), "%.15g", v);
		if (strtod(t, NULL) != v)
			snprintf(t, sizeof(t), "%.17g", v);
		mbuf_put(b, t, strlen(t));
	}
}

static void prom_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{worker="N",pid="P"[,extra]} value */
static void prom_worker(struct mbuf *b, const char *name, const struct worker_view *v,
			const char *extra, double value)
{
	mbuf_printf(b, "%s{worker=\"%u\",pid=\"%d\"%s%s} ", name, v->no, (int)v->p.pid,
		    extra ? "," : "", extra ? extra : "");
	prom_num(b, value);
	mbuf_put(b, "\n", 1);
}

static void prom_plain(struct mbuf *b, const char *name, const char *labels, double value)
{
	mbuf_printf(b, "%s%s%s%s ", name, labels ? "{" : "", labels ? labels : "", labels ? "}" : "");
	prom_num(b, value);
	mbuf_put(b, "\n", 1);
}

/* ---- Prometheus: per-worker families ---- */

typedef double (*wget_fn)(const struct sampler *s, const struct worker_view *v);
struct wfamily {
	const char *name, *type, *help;
	wget_fn get;
	bool needs_proc; /* only for workers whose /proc was read */
};

#define WGET(fn, expr)                                                          \
	static double fn(const struct sampler *s, const struct worker_view *v) \
	{                                                                       \
		(void)s;                                                        \
		return (double)(expr);                                          \
	}
WGET(w_requests, v->requests)
WGET(w_accepted, v->accepted)
WGET(w_bytes, v->bytes_out)
WGET(w_busy, (double)v->busy_ns / 1e9)
WGET(w_inflight, v->inflight)
WGET(w_conns, v->connections)
WGET(w_age, sample_age_s(s, v->spawned_ns))
WGET(w_threads, v->p.proc.stat.num_threads)
WGET(w_rss, (double)v->p.proc.status.vm_rss_kb * 1024)
WGET(w_pss, (double)v->p.smaps.pss_kb * 1024)
WGET(w_pdirty, (double)v->p.smaps.private_dirty_kb * 1024)
WGET(w_anon, (double)v->p.smaps.anonymous_kb * 1024)
WGET(w_swap, (double)v->p.smaps.swap_kb * 1024)
WGET(w_wait, (double)v->p.wait_ns_total / 1e9)
WGET(w_cost, (double)v->p.cost_ns / 1e9)
WGET(w_trims, v->trims)
WGET(w_util, v->has_figures ? v->fig.util : 0)

static const struct wfamily wfamilies[] = {
	{"drover_requests_total", "counter", "Requests served by the worker.", w_requests, false},
	{"drover_connections_accepted_total", "counter", "Connections accepted by the worker.",
	 w_accepted, false},
	{"drover_response_bytes_total", "counter", "Response bytes written by the worker.",
	 w_bytes, false},
	{"drover_worker_busy_seconds_total", "counter", "Time the worker spent serving requests.",
	 w_busy, false},
	{"drover_worker_utilization_ratio", "gauge",
	 "Share of the last sample interval spent serving requests.", w_util, false},
	{"drover_worker_inflight_requests", "gauge", "Requests being served now.", w_inflight,
	 false},
	{"drover_worker_open_connections", "gauge", "Connections open now.", w_conns, false},
	{"drover_worker_age_seconds", "gauge", "Time since the worker was forked.", w_age, false},
	{"drover_worker_heap_trims_total", "counter", "malloc_trim calls done by the worker.",
	 w_trims, false},
	{"drover_worker_threads", "gauge", "Threads of the worker process.", w_threads, true},
	{"drover_worker_resident_memory_bytes", "gauge", "Resident set size (VmRSS).", w_rss, true},
	{"drover_worker_pss_bytes", "gauge", "Proportional set size (smaps_rollup).", w_pss, true},
	{"drover_worker_private_dirty_bytes", "gauge", "Private dirty memory (smaps_rollup).",
	 w_pdirty, true},
	{"drover_worker_anonymous_memory_bytes", "gauge", "Anonymous memory (smaps_rollup).",
	 w_anon, true},
	{"drover_worker_swap_bytes", "gauge", "Swapped-out memory (smaps_rollup).", w_swap, true},
	{"drover_worker_runqueue_wait_seconds_total", "counter",
	 "Time the worker's threads waited for a CPU while runnable (schedstat).", w_wait, true},
	{"drover_worker_sample_cost_seconds", "gauge",
	 "Wall time the master's last read of this worker's /proc files took.", w_cost, true},
};

static void prom_wfamily(struct mbuf *b, const struct sampler *s, const struct wfamily *f)
{
	prom_head(b, f->name, f->type, f->help);
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (sample_live(v) && (!f->needs_proc || v->p.valid))
			prom_worker(b, f->name, v, NULL, f->get(s, v));
	}
}

static void prom_info(struct mbuf *b, const struct sampler *s)
{
	prom_head(b, "drover_worker_info", "gauge",
		  "Worker identity and state: generation, scoreboard state, kernel state.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v))
			continue;
		char extra[160];
		snprintf(extra, sizeof(extra), "generation=\"%u\",state=\"%s\",proc_state=\"%c\"",
			 v->generation, v->stopping ? "stopping" : sample_sb_state_name(v->sb_state),
			 v->p.valid ? v->p.proc.stat.state : '?');
		prom_worker(b, "drover_worker_info", v, extra, 1);
	}
}

static void prom_labelled(struct mbuf *b, const struct sampler *s)
{
	static const char *const cls[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	prom_head(b, "drover_responses_total", "counter", "Responses by status class.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		char extra[32];
		for (int c = 0; sample_live(v) && c < 6; c++) {
			snprintf(extra, sizeof(extra), "class=\"%s\"", cls[c]);
			prom_worker(b, "drover_responses_total", v, extra, (double)v->status_class[c]);
		}
	}
	prom_head(b, "drover_worker_cpu_seconds_total", "counter",
		  "CPU time of the worker (utime and stime of /proc/PID/stat).");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v) || !v->p.valid)
			continue;
		prom_worker(b, "drover_worker_cpu_seconds_total", v, "mode=\"user\"",
			    cpu_seconds(s, v->p.proc.stat.utime));
		prom_worker(b, "drover_worker_cpu_seconds_total", v, "mode=\"system\"",
			    cpu_seconds(s, v->p.proc.stat.stime));
	}
	prom_head(b, "drover_worker_context_switches_total", "counter",
		  "Context switches summed over the worker's threads since drover first saw it.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v) || !v->p.valid)
			continue;
		prom_worker(b, "drover_worker_context_switches_total", v, "kind=\"voluntary\"",
			    (double)v->p.vcsw_total);
		prom_worker(b, "drover_worker_context_switches_total", v, "kind=\"involuntary\"",
			    (double)v->p.ivcsw_total);
	}
}

static void prom_heap(struct mbuf *b, const struct sampler *s)
{
	prom_head(b, "drover_worker_heap_bytes", "gauge",
		  "glibc malloc figures (mallinfo2) reported by the worker.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v))
			continue;
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"arena\"", (double)v->heap_arena);
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"mmap\"", (double)v->heap_mmap);
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"in_use\"",
			    (double)v->heap_in_use);
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"free\"", (double)v->heap_free);
	}
}

/* Memory verdicts (recycle.c): the baseline, the growth against it, and the
 * verdict as a state set (one series per verdict, 1 for the current one). */
static void prom_memory(struct mbuf *b, const struct sampler *s)
{
	static const char *const kinds[3] = {"kind=\"rss\"", "kind=\"in_use\"", "kind=\"free\""};
	prom_head(b, "drover_worker_memory_baseline_bytes", "gauge",
		  "Anonymous RSS of the worker when its warm-up ended (recycle_warmup).");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (sample_live(&s->w[i]) && s->w[i].mem.base_rss)
			prom_worker(b, "drover_worker_memory_baseline_bytes", &s->w[i], NULL,
				    (double)s->w[i].mem.base_rss);
	prom_head(b, "drover_worker_memory_growth_bytes", "gauge",
		  "Growth since the baseline: RSS, heap in use (malloc and pymalloc), free heap.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v) || !v->mem.base_rss)
			continue;
		int64_t g[3] = {v->mem.rss_growth, v->mem.in_use_growth, v->mem.free_growth};
		for (int k = 0; k < 3; k++)
			prom_worker(b, "drover_worker_memory_growth_bytes", v, kinds[k], (double)g[k]);
	}
	prom_head(b, "drover_worker_memory_verdict", "gauge",
		  "Memory verdict of the worker: 1 for the current one.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v))
			continue;
		for (int k = RV_WARMING; k <= RV_LEAK; k++) {
			char l[48];
			snprintf(l, sizeof(l), "verdict=\"%s\"", recycle_verdict_name(k));
			prom_worker(b, "drover_worker_memory_verdict", v, l, v->mem.verdict == k);
		}
	}
	static const char *const why[RECYCLE_WHY_N] = RECYCLE_WHY_NAMES;
	prom_head(b, "drover_recycles_total", "counter",
		  "Graceful replaces begun (successor accepting first), by reason.");
	for (int k = 0; k < RECYCLE_WHY_N; k++) {
		char l[48];
		snprintf(l, sizeof(l), "reason=\"%s\"", why[k]);
		prom_plain(b, "drover_recycles_total", l, (double)s->master.recycled[k]);
	}
	prom_head(b, "drover_worker_pymalloc_arena_bytes", "gauge",
		  "Bytes of pymalloc arenas mapped (Python workers; outside mallinfo2).");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (sample_live(&s->w[i]) && s->w[i].py_arena)
			prom_worker(b, "drover_worker_pymalloc_arena_bytes", &s->w[i], NULL,
				    (double)s->w[i].py_arena);
}

static void prom_histogram(struct mbuf *b, const struct sampler *s)
{
	const char *n = "drover_request_duration_seconds";
	prom_head(b, n, "histogram", "Request duration, from request start to response written.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!sample_live(v))
			continue;
		uint64_t cum = 0;
		for (unsigned k = 0; k < SB_HIST_BUCKETS; k++) {
			char le[48];
			cum += v->hist.b[k];
			double up = sb_hist_upper_s(k);
			if (isinf(up))
				snprintf(le, sizeof(le), "le=\"+Inf\"");
			else
				snprintf(le, sizeof(le), "le=\"%g\"", up);
			prom_worker(b, "drover_request_duration_seconds_bucket", v, le, (double)cum);
		}
		prom_worker(b, "drover_request_duration_seconds_sum", v, NULL,
			    (double)v->hist.sum_ns / 1e9);
		prom_worker(b, "drover_request_duration_seconds_count", v, NULL, (double)cum);
	}
}

/* How long the master's loop was busy sampling, pass by pass: a pass that
 * grows with the pool delays signals, the control socket and decisions. */
static void prom_pass_histogram(struct mbuf *b, const struct sampler *s)
{
	const char *n = "drover_sampler_pass_seconds";
	prom_head(b, n, "histogram", "Wall time of each sampling pass on the master's loop.");
	uint64_t cum = 0;
	char le[32];
	for (size_t i = 0; i < SAMPLE_PASS_BUCKETS; i++) {
		cum += s->pass_hist[i];
		snprintf(le, sizeof(le), "le=\"%g\"", sample_pass_le_s[i]);
		prom_plain(b, "drover_sampler_pass_seconds_bucket", le, (double)cum);
	}
	cum += s->pass_hist[SAMPLE_PASS_BUCKETS];
	prom_plain(b, "drover_sampler_pass_seconds_bucket", "le=\"+Inf\"", (double)cum);
	prom_plain(b, "drover_sampler_pass_seconds_sum", NULL, (double)s->pass_sum_ns / 1e9);
	prom_plain(b, "drover_sampler_pass_seconds_count", NULL, (double)cum);
}

static void prom_master(struct mbuf *b, const struct sampler *s)
{
	const struct master_view *m = &s->master;
	char lab[64];
	prom_head(b, "drover_build_info", "gauge", "drover's version.");
	snprintf(lab, sizeof(lab), "version=\"%s\"", DROVER_VERSION);
	prom_plain(b, "drover_build_info", lab, 1);
	prom_head(b, "drover_workers", "gauge", "Live workers (old generations and stopping included).");
	prom_plain(b, "drover_workers", NULL, m->live);
	prom_head(b, "drover_workers_ready", "gauge", "Workers booted and not stopping.");
	prom_plain(b, "drover_workers_ready", NULL, m->booted);
	prom_head(b, "drover_workers_target", "gauge", "Workers wanted.");
	prom_plain(b, "drover_workers_target", NULL, m->target);
	/* Issue 13: what a HorizontalPodAutoscaler scales pods on (through the
	 * Prometheus adapter), the same figures the in-pod autoscaler reads:
	 * busy share of the pool, and that share in workers (Little's L). */
	const struct pool_figures *pf = &s->pool;
	prom_head(b, "drover_pool_utilization", "gauge",
		  "Mean share of wall time the pool's workers were busy (0..1), last sample.");
	prom_plain(b, "drover_pool_utilization", NULL, pf->util_mean);
	prom_head(b, "drover_pool_demand_workers", "gauge",
		  "Workers kept busy on average (utilization x workers), last sample.");
	prom_plain(b, "drover_pool_demand_workers", NULL, pf->util_mean * pf->workers);
	prom_head(b, "drover_config_generation", "gauge", "Configuration generation (each reload adds one).");
	prom_plain(b, "drover_config_generation", NULL, m->generation);
	prom_head(b, "drover_pool_requests_total", "counter",
		  "Requests served by all workers, including those gone (as last sampled).");
	uint64_t total = s->retired_requests;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		total += sample_live(&s->w[i]) ? s->w[i].requests : 0;
	prom_plain(b, "drover_pool_requests_total", NULL, (double)total);
	prom_head(b, "drover_master_cpu_seconds_total", "counter", "CPU time of the master process.");
	prom_plain(b, "drover_master_cpu_seconds_total", "mode=\"user\"",
		   cpu_seconds(s, s->self.proc.stat.utime));
	prom_plain(b, "drover_master_cpu_seconds_total", "mode=\"system\"",
		   cpu_seconds(s, s->self.proc.stat.stime));
	prom_head(b, "drover_master_resident_memory_bytes", "gauge", "Resident set size of the master.");
	prom_plain(b, "drover_master_resident_memory_bytes", NULL,
		   (double)s->self.proc.status.vm_rss_kb * 1024);
	prom_head(b, "drover_sampler_cpu_seconds_total", "counter", "CPU time the master spent sampling.");
	prom_plain(b, "drover_sampler_cpu_seconds_total", NULL, (double)s->cpu_ns_total / 1e9);
	prom_head(b, "drover_sampler_last_pass_seconds", "gauge", "Wall time of the last sampling pass.");
	prom_plain(b, "drover_sampler_last_pass_seconds", NULL, (double)s->last_pass_ns / 1e9);
	prom_pass_histogram(b, s);
}

static void prom_listeners(struct mbuf *b, const struct sampler *s)
{
	prom_head(b, "drover_listen_queue_connections", "gauge",
		  "Connections waiting in a TCP listener's accept queue.");
	for (size_t i = 0; i < s->nl; i++) {
		if (!s->l[i].ok)
			continue;
		mbuf_put(b, "drover_listen_queue_connections{listener=\"", 42);
		mbuf_prom_label(b, s->l[i].name);
		mbuf_printf(b, "\"} %u\n", s->l[i].queued);
	}
	prom_head(b, "drover_listen_queue_limit", "gauge", "Accept queue limit (backlog) of a TCP listener.");
	for (size_t i = 0; i < s->nl; i++) {
		if (!s->l[i].ok)
			continue;
		mbuf_put(b, "drover_listen_queue_limit{listener=\"", 36);
		mbuf_prom_label(b, s->l[i].name);
		mbuf_printf(b, "\"} %u\n", s->l[i].limit);
	}
}

static void prom_host(struct mbuf *b, const struct sampler *s)
{
	static const char *const res[3] = {"cpu", "io", "memory"};
	const struct host_view *h = &s->host;
	if (h->has_load) {
		prom_head(b, "drover_host_load_average", "gauge", "Load average (/proc/loadavg).");
		prom_plain(b, "drover_host_load_average", "period=\"1m\"", h->load.load1);
		prom_plain(b, "drover_host_load_average", "period=\"5m\"", h->load.load5);
		prom_plain(b, "drover_host_load_average", "period=\"15m\"", h->load.load15);
	}
	prom_head(b, "drover_host_online_cpus", "gauge", "CPUs online.");
	prom_plain(b, "drover_host_online_cpus", NULL, h->online_cpus);
	prom_head(b, "drover_cpu_effective_cpus", "gauge",
		  "CPUs this group may use: cgroup quota / period, capped at the online CPUs.");
	prom_plain(b, "drover_cpu_effective_cpus", NULL, h->effective_cpus);
	prom_head(b, "drover_host_pressure_avg10_ratio", "gauge",
		  "Pressure stall information, 10 s average, as a ratio.");
	for (int i = 0; i < 3; i++) {
		char lab[64];
		if (!h->psi[i].present)
			continue;
		snprintf(lab, sizeof(lab), "resource=\"%s\",kind=\"some\"", res[i]);
		prom_plain(b, "drover_host_pressure_avg10_ratio", lab, h->psi[i].some.avg10 / 100);
		if (h->psi[i].has_full) {
			snprintf(lab, sizeof(lab), "resource=\"%s\",kind=\"full\"", res[i]);
			prom_plain(b, "drover_host_pressure_avg10_ratio", lab, h->psi[i].full.avg10 / 100);
		}
	}
	prom_head(b, "drover_host_pressure_stalled_seconds_total", "counter",
		  "Pressure stall information, total stall time.");
	for (int i = 0; i < 3; i++) {
		char lab[64];
		if (!h->psi[i].present)
			continue;
		snprintf(lab, sizeof(lab), "resource=\"%s\",kind=\"some\"", res[i]);
		prom_plain(b, "drover_host_pressure_stalled_seconds_total", lab,
			   (double)h->psi[i].some.total_us / 1e6);
		if (h->psi[i].has_full) {
			snprintf(lab, sizeof(lab), "resource=\"%s\",kind=\"full\"", res[i]);
			prom_plain(b, "drover_host_pressure_stalled_seconds_total", lab,
				   (double)h->psi[i].full.total_us / 1e6);
		}
	}
}

static void prom_cgroup(struct mbuf *b, const struct sampler *s)
{
	const struct host_view *h = &s->host;
	if (h->has_cg_max && h->cg_max.quota_us != CG_QUOTA_NONE) {
		prom_head(b, "drover_cgroup_cpu_quota_seconds", "gauge", "CPU time allowed per period.");
		prom_plain(b, "drover_cgroup_cpu_quota_seconds", NULL, (double)h->cg_max.quota_us / 1e6);
		prom_head(b, "drover_cgroup_cpu_period_seconds", "gauge", "CFS bandwidth period.");
		prom_plain(b, "drover_cgroup_cpu_period_seconds", NULL, (double)h->cg_max.period_us / 1e6);
	}
	if (!h->has_cg_stat)
		return;
	if (h->cg_stat.has_usage) {
		prom_head(b, "drover_cgroup_cpu_usage_seconds_total", "counter", "CPU used by the group.");
		prom_plain(b, "drover_cgroup_cpu_usage_seconds_total", NULL,
			   (double)h->cg_stat.usage_us / 1e6);
	}
	if (h->cg_stat.has_throttling) {
		prom_head(b, "drover_cgroup_cpu_periods_total", "counter", "CFS periods elapsed.");
		prom_plain(b, "drover_cgroup_cpu_periods_total", NULL, (double)h->cg_stat.nr_periods);
		prom_head(b, "drover_cgroup_cpu_throttled_periods_total", "counter",
			  "CFS periods in which the group was throttled.");
		prom_plain(b, "drover_cgroup_cpu_throttled_periods_total", NULL,
			   (double)h->cg_stat.nr_throttled);
		prom_head(b, "drover_cgroup_cpu_throttled_seconds_total", "counter",
			  "Time the group was throttled.");
		prom_plain(b, "drover_cgroup_cpu_throttled_seconds_total", NULL,
			   (double)h->cg_stat.throttled_us / 1e6);
	}
}

void metrics_prometheus(const struct sampler *s, struct mbuf *out)
{
	prom_master(out, s);
	prom_info(out, s);
	for (size_t i = 0; i < sizeof(wfamilies) / sizeof(wfamilies[0]); i++)
		prom_wfamily(out, s, &wfamilies[i]);
	prom_labelled(out, s);
	prom_heap(out, s);
	prom_memory(out, s);
	prom_histogram(out, s);
	prom_listeners(out, s);
	prom_host(out, s);
	prom_cgroup(out, s);
	stallout_prometheus(s, out);
	doctor_prometheus(s->doctor, out);
	autoscale_show_prom(s, out);
	fdlimit_prometheus(s, out);
}

