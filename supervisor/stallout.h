/* Stall statistics rendered: the "stalls" object of the status JSON, the
 * stall lines of `drover ctl status`, and the Prometheus families
 * drover_stalls_total{site=...}, drover_stall_site_seconds_total{site=...}
 * and the drover_stall_seconds histogram. */
#ifndef DROVER_STALLOUT_H
#define DROVER_STALLOUT_H

#include "supervisor/mbuf.h"
#include "supervisor/sample.h"

#define STALLOUT_TOP 10 /* sites shown in JSON and the table */

/* ,"stalls":{...} (to append inside the top-level object). */
void stallout_json(const struct sampler *s, struct mbuf *out);
/* ,"stalls":N,"stall_s":X,"stalled_for_s":Y (inside a worker's object). */
void stallout_json_worker(const struct sampler *s, const struct worker_view *v, struct mbuf *out);
/* Lines for the status table; nothing without stalls. */
void stallout_table(const struct sampler *s, struct mbuf *out);
void stallout_prometheus(const struct sampler *s, struct mbuf *out);
#endif
