/* Prometheus text exposition (0.0.4) of the sampler's data: pure over a
 * struct sampler, no I/O, no clock. */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include "supervisor/mbuf.h"

struct sampler;

void metrics_prometheus(const struct sampler *s, struct mbuf *out);
#endif
