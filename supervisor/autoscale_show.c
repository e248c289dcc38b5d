/* The autoscaler's state rendered for `drover ctl status`, /status.json and
 * /metrics (see autoscale_show.h).  The log line of each decision is kept as
 * text, so the operator reads the same words everywhere. */
#include "supervisor/autoscale_show.h"

#include <math.h>
#include <stdio.h>

#include "supervisor/autoscale_run.h"

#define SHOWN_IN_TABLE 5

/* The decision texts hold no quote, backslash or control character. */
static void json_decision(struct mbuf *b, const struct sampler *s,
			  const struct autoscale_decision *d, const char *text)
{
	mbuf_printf(b, "{\"age_s\":%.1f,\"from\":%u,\"to\":%u,\"why\":\"%s\",\"lambda\":%.2f,"
		    "\"w_ms\":%.2f,\"wanted\":%.2f,\"queued\":%u,\"cpu_guard\":%s,\"capped_by\":\"%s\","
		    "\"text\":\"%s\"}",
		    sample_age_s(s, d->t_ns), d->from, d->to, autoscale_why_name(d->why), d->lambda,
		    d->w_s * 1e3, d->raw, d->queued, d->cpu_guard ? "true" : "false",
		    d->capped_by ? d->capped_by : "", text);
}

/* i-th newest history entry. */
static unsigned hist_index(const struct autoscaler *a, unsigned i)
{
	return (a->hist_pos + AUTOSCALE_HISTORY - 1 - i) % AUTOSCALE_HISTORY;
}

void autoscale_show_json(const struct sampler *s, struct mbuf *out)
{
	const struct autoscaler *a = s->autoscale;
	if (!a)
		return;
	mbuf_printf(out, ",\"autoscale\":{\"on\":%s,\"paused\":%s,\"min\":%u,\"max\":%u,"
		    "\"decisions\":%llu,\"changes\":%llu",
		    a->on ? "true" : "false", a->paused ? "true" : "false", a->min, a->max,
		    (unsigned long long)a->decisions, (unsigned long long)a->changes);
	if (a->decisions) {
		mbuf_put(out, ",\"last\":", 8);
		json_decision(out, s, &a->last, a->last_text);
	}
	mbuf_put(out, ",\"history\":[", 12);
	for (unsigned i = 0; i < a->hist_n; i++) {
		unsigned k = hist_index(a, a->hist_n - 1 - i); /* oldest first */
		if (i)
			mbuf_put(out, ",", 1);
		json_decision(out, s, &a->hist[k], a->hist_text[k]);
	}
	mbuf_put(out, "]}", 2);
}

void autoscale_show_table(const struct sampler *s, struct mbuf *out)
{
	const struct autoscaler *a = s->autoscale;
	if (!a || !a->on)
		return;
	mbuf_printf(out, "autoscale: %s, %u..%u workers, %llu changes\n",
		    a->paused ? "paused" : "on", a->min, a->max, (unsigned long long)a->changes);
	if (a->decisions)
		mbuf_printf(out, "  last: %s\n", a->last_text);
	unsigned n = a->hist_n < SHOWN_IN_TABLE ? a->hist_n : SHOWN_IN_TABLE;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = hist_index(a, n - 1 - i);
		mbuf_printf(out, "  %6.0f s ago: %s\n", sample_age_s(s, a->hist[k].t_ns),
			    a->hist_text[k]);
	}
}

void autoscale_show_prom(const struct sampler *s, struct mbuf *out)
{
	const struct autoscaler *a = s->autoscale;
	if (!a)
		return;
	mbuf_printf(out, "# HELP drover_autoscale_enabled Whether the autoscaler sizes the pool.\n"
		    "# TYPE drover_autoscale_enabled gauge\ndrover_autoscale_enabled %d\n",
		    a->on && !a->paused);
	if (!a->on)
		return;
	mbuf_printf(out, "# HELP drover_autoscale_bounds Workers the autoscaler may keep.\n"
		    "# TYPE drover_autoscale_bounds gauge\n"
		    "drover_autoscale_bounds{bound=\"min\"} %u\ndrover_autoscale_bounds{bound=\"max\"} %u\n",
		    a->min, a->max);
	mbuf_printf(out, "# HELP drover_autoscale_wanted Workers Little's law asks for (unrounded).\n"
		    "# TYPE drover_autoscale_wanted gauge\ndrover_autoscale_wanted %.3f\n",
		    isfinite(a->last.raw) ? a->last.raw : 0);
	mbuf_printf(out, "# HELP drover_autoscale_target Target of the last decision, labelled with its reason.\n"
		    "# TYPE drover_autoscale_target gauge\n"
		    "drover_autoscale_target{reason=\"%s\",capped_by=\"%s\",cpu_guard=\"%s\"} %u\n",
		    autoscale_why_name(a->last.why), a->last.capped_by ? a->last.capped_by : "",
		    a->last.cpu_guard ? "true" : "false", a->last.to);
	mbuf_printf(out, "# HELP drover_autoscale_changes_total Target changes made by the autoscaler.\n"
		    "# TYPE drover_autoscale_changes_total counter\ndrover_autoscale_changes_total %llu\n",
		    (unsigned long long)a->changes);
}
