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

/* stall_action: what to do with a worker that stalls again and again (its
 * watchdog counts the stalls begun within the last minute). */
enum stall_escalation {
	STALL_ESC_NONE,
	STALL_ESC_RECYCLE, /* replace gracefully: the new worker accepts first */
	STALL_ESC_KILL, /* SIGKILL now; the pool forks another */
};

struct stall_escalate_conf {
	int action; /* conf stall_action: 0 log, 1 recycle, 2 kill */
	unsigned after; /* conf stall_recycle_after: stalls within a minute */
};

/* For one live worker: escalate when it stalled `after` times within the
 * last minute and is not already stopping, being killed or replaced. */
enum stall_escalation stall_decide_escalation(const struct worker_view *v,
					      const struct stall_escalate_conf *c);
#endif
