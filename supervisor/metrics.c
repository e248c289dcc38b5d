/* Prometheus text, status JSON and the status table, all rendered from the
 * sampler's last pass (see metrics.h).  Metric names follow the Prometheus
 * conventions: base units (seconds, bytes), _total for counters, one family
 * per quantity with labels for its parts. */
#include "supervisor/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover_config.h"
#include "supervisor/sample.h"

/* ---- mbuf ---- */

void mbuf_init(struct mbuf *b, size_t max)
{
	*b = (struct mbuf){.max = max};
}

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	*b = (struct mbuf){0};
}

static bool mbuf_reserve(struct mbuf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (cap > b->max && b->len + n + 1 <= b->max)
		cap = b->max;
	char *p = cap <= b->max ? realloc(b->p, cap) : NULL;
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void mbuf_put(struct mbuf *b, const char *s, size_t n)
{
	if (!mbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !mbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void mbuf_json_str(struct mbuf *b, const char *s)
{
	mbuf_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			mbuf_printf(b, "\\%c", c);
		else if (c < 0x20)
			mbuf_printf(b, "\\u%04x", c);
		else
			mbuf_put(b, (const char *)&c, 1);
	}
	mbuf_put(b, "\"", 1);
}

void mbuf_json_num(struct mbuf *b, double v)
{
	if (isfinite(v))
		mbuf_printf(b, "%.6g", v);
	else
		mbuf_put(b, "null", 4);
}

/* ---- helpers over the sampler ---- */

static bool live(const struct worker_view *v)
{
	return v->p.pid != 0;
}

static double age_s(const struct sampler *s, uint64_t since_ns)
{
	return since_ns && s->master.now_ns > since_ns ? (double)(s->master.now_ns - since_ns) / 1e9
						       : 0;
}

static const char *sb_state_name(uint32_t st)
{
	static const char *const names[] = {"free", "booting", "idle", "busy", "draining", "exited"};
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static double cpu_seconds(const struct sampler *s, uint64_t ticks)
{
	return (double)ticks / (double)(s->clk_tck > 0 ? s->clk_tck : 100);
}

/* Prometheus label values escape backslash, double quote and newline. */
static void prom_label(struct mbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			mbuf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			mbuf_put(b, "\\n", 2);
		else
			mbuf_put(b, v, 1);
	}
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
WGET(w_age, age_s(s, v->spawned_ns))
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
		if (live(v) && (!f->needs_proc || v->p.valid))
			prom_worker(b, f->name, v, NULL, f->get(s, v));
	}
}

static void prom_info(struct mbuf *b, const struct sampler *s)
{
	prom_head(b, "drover_worker_info", "gauge",
		  "Worker identity and state: generation, scoreboard state, kernel state.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!live(v))
			continue;
		char extra[160];
		snprintf(extra, sizeof(extra), "generation=\"%u\",state=\"%s\",proc_state=\"%c\"",
			 v->generation, v->stopping ? "stopping" : sb_state_name(v->sb_state),
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
		for (int c = 0; live(v) && c < 6; c++) {
			snprintf(extra, sizeof(extra), "class=\"%s\"", cls[c]);
			prom_worker(b, "drover_responses_total", v, extra, (double)v->status_class[c]);
		}
	}
	prom_head(b, "drover_worker_cpu_seconds_total", "counter",
		  "CPU time of the worker (utime and stime of /proc/PID/stat).");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!live(v) || !v->p.valid)
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
		if (!live(v) || !v->p.valid)
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
		if (!live(v))
			continue;
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"arena\"", (double)v->heap_arena);
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"mmap\"", (double)v->heap_mmap);
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"in_use\"",
			    (double)v->heap_in_use);
		prom_worker(b, "drover_worker_heap_bytes", v, "kind=\"free\"", (double)v->heap_free);
	}
}

static void prom_histogram(struct mbuf *b, const struct sampler *s)
{
	const char *n = "drover_request_duration_seconds";
	prom_head(b, n, "histogram", "Request duration, from request start to response written.");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		if (!live(v))
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
	prom_head(b, "drover_config_generation", "gauge", "Configuration generation (each reload adds one).");
	prom_plain(b, "drover_config_generation", NULL, m->generation);
	prom_head(b, "drover_pool_requests_total", "counter",
		  "Requests served by all workers, including those gone (as last sampled).");
	uint64_t total = s->retired_requests;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		total += live(&s->w[i]) ? s->w[i].requests : 0;
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
}

static void prom_listeners(struct mbuf *b, const struct sampler *s)
{
	prom_head(b, "drover_listen_queue_connections", "gauge",
		  "Connections waiting in a TCP listener's accept queue.");
	for (size_t i = 0; i < s->nl; i++) {
		if (!s->l[i].ok)
			continue;
		mbuf_put(b, "drover_listen_queue_connections{listener=\"", 42);
		prom_label(b, s->l[i].name);
		mbuf_printf(b, "\"} %u\n", s->l[i].queued);
	}
	prom_head(b, "drover_listen_queue_limit", "gauge", "Accept queue limit (backlog) of a TCP listener.");
	for (size_t i = 0; i < s->nl; i++) {
		if (!s->l[i].ok)
			continue;
		mbuf_put(b, "drover_listen_queue_limit{listener=\"", 36);
		prom_label(b, s->l[i].name);
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
	prom_histogram(out, s);
	prom_listeners(out, s);
	prom_host(out, s);
	prom_cgroup(out, s);
}

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

static void json_worker(struct mbuf *b, const struct sampler *s, const struct worker_view *v)
{
	const struct proc_view *p = &v->p;
	char st[2] = {p->valid ? p->proc.stat.state : '?', 0};
	mbuf_printf(b, "{\"no\":%u,\"pid\":%d,\"generation\":%u", v->no, (int)p->pid, v->generation);
	jnum(b, "age_s", age_s(s, v->spawned_ns), true);
	jstr(b, "state", v->stopping ? "stopping" : sb_state_name(v->sb_state), true);
	jstr(b, "proc_state", st, true);
	jstr(b, "wchan", p->wchan, true);
	jnum(b, "requests", (double)v->requests, true);
	jnum(b, "inflight", v->inflight, true);
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
	mbuf_put(b, "}", 1);
}

static void json_master(struct mbuf *b, const struct sampler *s)
{
	const struct master_view *m = &s->master;
	const struct pool_figures *pf = &s->pool;
	mbuf_printf(b, "\"master\":{\"pid\":%d", (int)m->pid);
	jstr(b, "version", DROVER_VERSION, true);
	jstr(b, "state", m->state ? m->state : "?", true);
	jnum(b, "age_s", age_s(s, m->started_ns), true);
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
	mbuf_put(b, "}", 1);
}

static void json_host(struct mbuf *b, const struct sampler *s)
{
	static const char *const res[3] = {"cpu", "io", "memory"};
	const struct host_view *h = &s->host;
	mbuf_printf(b, ",\"host\":{\"online_cpus\":%u", h->online_cpus);
	jnum(b, "effective_cpus", h->effective_cpus, true);
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
		if (live(&s->w[i]))
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

void metrics_status_json(const struct sampler *s, struct mbuf *out)
{
	static const struct worker_view *ws[SB_MAX_SLOTS];
	mbuf_put(out, "{", 1);
	json_master(out, s);
	json_host(out, s);
	json_listeners(out, s);
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
	mbuf_printf(b, "%3u %7d %7.0f %-8s %c %9llu", v->no, (int)p->pid, age_s(s, v->spawned_ns),
		    v->stopping ? "stopping" : sb_state_name(v->sb_state),
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
	mbuf_put(b, "\n", 1);
}

void metrics_status_table(const struct sampler *s, struct mbuf *out)
{
	static const struct worker_view *ws[SB_MAX_SLOTS];
	const struct master_view *m = &s->master;
	const struct pool_figures *pf = &s->pool;
	const struct host_view *h = &s->host;
	mbuf_printf(out, "master %d (%s), generation %u, up %.0f s: %u/%u workers ready, %u live\n",
		    (int)m->pid, m->state ? m->state : "?", m->generation, age_s(s, m->started_ns),
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
	mbuf_printf(out, "sampler: %.0f us per pass, %.1f us CPU per worker\n\n",
		    (double)s->last_pass_ns / 1e3, s->cost_us_per_worker);
	mbuf_printf(out, "%3s %7s %7s %-8s %c %9s %7s %7s %7s %7s %6s %6s %6s %7s %7s %4s %8s\n", "no",
		    "pid", "age_s", "state", 'S', "requests", "req/s", "p50ms", "p95ms", "p99ms",
		    "cpu%", "rssMB", "pssMB", "vcsw/s", "ivcsw/s", "thr", "runqms/s");
	size_t n = sorted_workers(s, ws);
	for (size_t i = 0; i < n; i++)
		table_worker(out, s, ws[i]);
}
