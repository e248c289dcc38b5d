/* `drover doctor` rendered: plain text for `drover ctl doctor`, JSON for
 * --json, the drover_finding{kind=...} gauges, and the one-line log summary
 * of a finding that appears or clears. */
#ifndef DROVER_DOCTOR_OUT_H
#define DROVER_DOCTOR_OUT_H

#include "supervisor/doctor.h"
#include "supervisor/mbuf.h"

void doctor_text(const struct doctor_state *st, uint64_t now, bool attached, struct mbuf *out);
void doctor_json(const struct doctor_state *st, uint64_t now, bool attached, struct mbuf *out);
void doctor_prometheus(const struct doctor_state *st, struct mbuf *out);
/* Log what ch says appeared or cleared (one line each). */
void doctor_log_changes(const struct doctor_state *st, const struct doctor_changes *ch);
#endif
