/* Decisions about workers that do not move: a pure function from a worker's
 * sample, the limits and the time to an action.  No I/O, no clock read, no
 * pool: the arbiter's tick applies what it returns through pool.c. */
#ifndef DROVER_STALL_H
#define DROVER_STALL_H

#include <stdint.h>

#include "supervisor/sample.h"

#define STALL_KILL_GRACE_NS 1000000000ull /* SIGABRT, then SIGKILL this much later */

enum stall_action {
	STALL_NONE,
	STALL_TIMEOUT, /* heartbeat older than timeout: SIGABRT (a core, a stack) */
	STALL_STOP_OVERDUE, /* asked to stop and still there past its grace: SIGKILL */
	STALL_KILL, /* SIGABRT went out and did not end it: SIGKILL */
};

struct stall_limits {
	double timeout_s; /* conf timeout; 0: never */
	double stop_grace_s; /* how long a stopping worker may take */
};

struct stall_verdict {
	enum stall_action action;
	double seconds; /* how long it has been idle / stopping */
};

/* The timeout decision for one live worker at now (monotonic ns). */
struct stall_verdict stall_decide_timeout(const struct worker_view *v,
					  const struct stall_limits *lim, uint64_t now);
#endif
