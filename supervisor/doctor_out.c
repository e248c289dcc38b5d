/* `drover doctor` rendered (see doctor_out.h). */
#include "supervisor/doctor_out.h"

#include "supervisor/log.h"

/* What --attach cannot see: it has no scoreboard. */
static const char attach_note[] =
	"attached: no scoreboard, so no latency figures, no stall stacks and no blocked-loop "
	"or fragmentation finding, no queueing finding (busy workers are unknown)\n";

void doctor_text(const struct doctor_state *st, uint64_t now, bool attached, struct mbuf *out)
{
	unsigned n = 0;
	for (int k = 0; k < DOC_NKINDS; k++) {
		if (!st->active[k])
			continue;
		const struct doctor_finding *f = &st->last[k];
		mbuf_printf(out, "%s (for %.0f s)\n  evidence: %s\n  change:   %s\n",
			    doctor_kind_name((enum doctor_kind)k),
			    (double)(now - st->since_ns[k]) / 1e9, f->evidence, f->advice);
		n++;
	}
	if (!n)
		mbuf_printf(out, "no finding (%u samples looked at)\n", st->samples);
	if (attached)
		mbuf_put(out, attach_note, sizeof(attach_note) - 1);
}

void doctor_json(const struct doctor_state *st, uint64_t now, bool attached, struct mbuf *out)
{
	mbuf_printf(out, "{\"samples\":%u,\"attached\":%s,\"findings\":[", st->samples,
		    attached ? "true" : "false");
	bool first = true;
	for (int k = 0; k < DOC_NKINDS; k++) {
		if (!st->active[k])
			continue;
		const struct doctor_finding *f = &st->last[k];
		mbuf_printf(out, "%s{\"kind\":\"%s\",\"for_s\":%.1f,\"evidence\":", first ? "" : ",",
			    doctor_kind_name((enum doctor_kind)k), (double)(now - st->since_ns[k]) / 1e9);
		mbuf_json_str(out, f->evidence);
		mbuf_put(out, ",\"change\":", 10);
		mbuf_json_str(out, f->advice);
		mbuf_put(out, "}", 1);
		first = false;
	}
	mbuf_put(out, "]}", 2);
}

void doctor_prometheus(const struct doctor_state *st, struct mbuf *out)
{
	mbuf_printf(out, "# HELP drover_finding 1 while drover doctor holds this finding.\n"
			 "# TYPE drover_finding gauge\n");
	for (int k = 0; k < DOC_NKINDS; k++)
		mbuf_printf(out, "drover_finding{kind=\"%s\"} %d\n",
			    doctor_kind_name((enum doctor_kind)k), st && st->active[k] ? 1 : 0);
}

void doctor_log_changes(const struct doctor_state *st, const struct doctor_changes *ch)
{
	for (int k = 0; k < DOC_NKINDS; k++) {
		const char *name = doctor_kind_name((enum doctor_kind)k);
		if (ch->appeared[k])
			log_warn("doctor: %s: %s; change: %s", name, st->last[k].evidence,
				 st->last[k].advice);
		if (ch->cleared[k])
			log_info("doctor: %s cleared", name);
	}
}
