/* accept() failures in a worker (all three models): counted in the worker's
 * scoreboard slot by kind, logged at most once a second, and answered with a
 * pause in accepting rather than a retry loop. */
#ifndef DROVER_ACCEPT_ERR_H
#define DROVER_ACCEPT_ERR_H

#include <stdint.h>

#include "workers/scoreboard.h"

/* How long a worker leaves the listen sockets alone after running out of
 * fds or kernel memory: long enough not to spin, short enough that a freed
 * fd is used soon. */
#define ACCEPT_PAUSE_NS 100000000ull

/* Record that accept() on listener failed with err (not EAGAIN, EINTR,
 * ECONNABORTED or EINVAL, which the models handle themselves): count it in
 * slot->accept_errors and log it unless a line went out less than a second
 * ago (the next line says how many were not logged).  now_ns: CLOCK_MONOTONIC.
 * Returns the pause in ns before the worker accepts again: ACCEPT_PAUSE_NS
 * when out of fds or memory, 0 for the other errors (a network error of the
 * pending connection: retry at once).  Callable from any thread of the
 * worker. */
uint64_t worker_accept_failed(struct sb_slot *slot, const char *listener, int err,
			      uint64_t now_ns);
#endif
