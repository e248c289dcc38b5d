/* The status of the master and its workers, rendered from the sampler: the
 * status JSON (control socket, /status.json) and the human table of
 * `drover ctl status`.  Pure over a struct sampler: no I/O, no clock. */
#ifndef DROVER_STATUS_H
#define DROVER_STATUS_H

#include "supervisor/mbuf.h"

struct sampler;

void status_json(const struct sampler *s, struct mbuf *out);
void status_table(const struct sampler *s, struct mbuf *out);
#endif
