/* File descriptors: how many a process of this configuration needs, raising
 * the soft RLIMIT_NOFILE toward it at start, and the accept-failure counts
 * (workers' and the master's servers') for /metrics. */
#ifndef DROVER_FDLIMIT_H
#define DROVER_FDLIMIT_H

#include <stddef.h>

#include "conf/conf.h"
#include "supervisor/mbuf.h"

struct sampler;

/* What the limit must allow, per process (the limit is per process and
 * inherited by the workers). */
struct fdlimit_need {
	unsigned long long worker; /* client connections of one worker + its own fds */
	unsigned long long master; /* queued connections taken at a graceful stop + per-worker fds */
	unsigned long long want; /* the larger */
};

/* Pure: the needs of configuration c with nlisteners listen sockets. */
struct fdlimit_need fdlimit_need(const struct drover_conf *c, size_t nlisteners);

/* The soft and hard RLIMIT_NOFILE before and after fdlimit_raise. */
struct fdlimit_result {
	unsigned long long soft_before, soft, hard;
};

/* Raise the soft RLIMIT_NOFILE to want, or to the hard limit if that is
 * lower; never lower it.  0: done (or nothing to do); -ERANGE: the hard limit
 * is below want (soft raised to it); other -errno from get/setrlimit. */
int fdlimit_raise(unsigned long long want, struct fdlimit_result *r);

/* drover_accept_errors_total (per worker) and
 * drover_master_accept_errors_total (control socket, metrics listener). */
void fdlimit_prometheus(const struct sampler *s, struct mbuf *out);
#endif
