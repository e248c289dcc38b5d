/* Stall statistics rendered (see stallout.h). */
#include "supervisor/stallout.h"

#include <math.h>
#include <stdio.h>

static void json_site(struct mbuf *b, const struct stall_site_view *st)
{
	mbuf_put(b, "{\"site\":", 8);
	mbuf_json_str(b, st->name);
	mbuf_printf(b, ",\"count\":%llu,\"seconds\":", (unsigned long long)st->count);
	mbuf_json_num(b, (double)st->total_ns / 1e9);
	mbuf_put(b, ",\"ongoing_s\":", 13);
	mbuf_json_num(b, (double)st->ongoing_ns / 1e9);
	mbuf_put(b, "}", 1);
}

void stallout_json(const struct sampler *s, struct mbuf *b)
{
	const struct stall_view *v = &s->stall;
	mbuf_printf(b, ",\"stalls\":{\"count\":%llu,\"seconds\":", (unsigned long long)v->stalls);
	mbuf_json_num(b, (double)v->stall_ns / 1e9);
	/* in progress: not in count's time nor the histogram until they end */
	mbuf_printf(b, ",\"ongoing\":{\"count\":%u,\"seconds\":", v->ongoing);
	mbuf_json_num(b, (double)v->ongoing_ns / 1e9);
	mbuf_put(b, "}", 1);
	mbuf_put(b, ",\"histogram\":[", 14);
	for (unsigned i = 0; i < SB_STALL_BUCKETS; i++) {
		mbuf_printf(b, "%s{\"le\":", i ? "," : "");
		double up = sb_stall_upper_s(i);
		if (isinf(up))
			mbuf_json_str(b, "+Inf");
		else
			mbuf_json_num(b, up);
		mbuf_printf(b, ",\"count\":%llu}", (unsigned long long)v->hist[i]);
	}
	mbuf_put(b, "],\"sites\":[", 11);
	const struct stall_site_view *top[STALLOUT_TOP];
	unsigned n = stallstat_sorted(v, top, STALLOUT_TOP);
	for (unsigned i = 0; i < n; i++) {
		if (i)
			mbuf_put(b, ",", 1);
		json_site(b, top[i]);
	}
	mbuf_put(b, "]}", 2);
}

void stallout_json_worker(const struct sampler *s, const struct worker_view *v, struct mbuf *b)
{
	mbuf_printf(b, ",\"stalls\":%llu,\"stall_s\":", (unsigned long long)v->stall.stalls);
	mbuf_json_num(b, (double)v->stall.stall_ns / 1e9);
	mbuf_put(b, ",\"stalled_for_s\":", 17);
	mbuf_json_num(b, sample_age_s(s, v->stall.since_ns));
}

void stallout_table(const struct sampler *s, struct mbuf *out)
{
	const struct stall_view *v = &s->stall;
	if (!v->stalls)
		return;
	mbuf_printf(out, "stalls: %llu, %.3f s in all; by blocking site:\n",
		    (unsigned long long)v->stalls, (double)v->stall_ns / 1e9);
	const struct stall_site_view *top[STALLOUT_TOP];
	unsigned n = stallstat_sorted(v, top, STALLOUT_TOP);
	const struct stall_site_view *now = NULL;
	for (unsigned i = 0; i < n; i++) {
		mbuf_printf(out, "  %6llu  %9.3f s  %s\n", (unsigned long long)top[i]->count,
			    (double)top[i]->total_ns / 1e9, top[i]->name);
		if (top[i]->ongoing_ns && !now)
			now = top[i];
	}
	/* not ended yet: its time is in no row above */
	if (v->ongoing)
		mbuf_printf(out, "  ongoing: %u, %.3f s so far%s%s\n", v->ongoing,
			    (double)v->ongoing_ns / 1e9, now ? ", most at " : "",
			    now ? now->name : "");
}

static void prom_sites(struct mbuf *b, const struct stall_view *v, const char *name,
		       const char *help, bool seconds)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (unsigned i = 0; i < v->nsites; i++) {
		mbuf_printf(b, "%s{site=\"", name);
		mbuf_prom_label(b, v->sites[i].name);
		if (seconds)
			mbuf_printf(b, "\"} %.6f\n", (double)v->sites[i].total_ns / 1e9);
		else
			mbuf_printf(b, "\"} %llu\n", (unsigned long long)v->sites[i].count);
	}
}

void stallout_prometheus(const struct sampler *s, struct mbuf *b)
{
	const struct stall_view *v = &s->stall;
	prom_sites(b, v, "drover_stalls_total",
		   "Stalls begun, by blocking site (innermost app frame), workers gone included.",
		   false);
	prom_sites(b, v, "drover_stall_site_seconds_total",
		   "Time spent in ended stalls, by blocking site.", true);
	mbuf_printf(b, "# HELP drover_stalls_ongoing Stalls in progress now.\n"
		       "# TYPE drover_stalls_ongoing gauge\ndrover_stalls_ongoing %u\n"
		       "# HELP drover_stall_ongoing_seconds Time so far of the stalls in progress.\n"
		       "# TYPE drover_stall_ongoing_seconds gauge\ndrover_stall_ongoing_seconds %.6f\n",
		    v->ongoing, (double)v->ongoing_ns / 1e9);
	const char *n = "drover_stall_seconds";
	mbuf_printf(b, "# HELP %s Duration of ended stalls (the pool).\n# TYPE %s histogram\n", n,
		    n);
	uint64_t cum = 0;
	for (unsigned i = 0; i < SB_STALL_BUCKETS; i++) {
		cum += v->hist[i];
		double up = sb_stall_upper_s(i);
		if (isinf(up))
			mbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", n, (unsigned long long)cum);
		else
			mbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", n, up, (unsigned long long)cum);
	}
	mbuf_printf(b, "%s_sum %.6f\n%s_count %llu\n", n, (double)v->stall_ns / 1e9, n,
		    (unsigned long long)cum);
}
