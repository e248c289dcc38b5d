/* The autoscaler as status and metrics show it: its bounds, its last
 * decision and a short history.  Pure over a struct sampler. */
#ifndef DROVER_AUTOSCALE_SHOW_H
#define DROVER_AUTOSCALE_SHOW_H

#include "supervisor/mbuf.h"
#include "supervisor/sample.h"

/* ,"autoscale":{...} for status JSON (nothing without an autoscaler). */
void autoscale_show_json(const struct sampler *s, struct mbuf *out);
/* Lines for `drover ctl status`. */
void autoscale_show_table(const struct sampler *s, struct mbuf *out);
/* drover_autoscale_* families for /metrics. */
void autoscale_show_prom(const struct sampler *s, struct mbuf *out);
#endif
