/* The timeout decision (see stall.h), gunicorn's meaning: a worker whose
 * heartbeat has not moved for `timeout` seconds is stuck; the worker side
 * decides what moves its heartbeat (a loop tick, a request step). */
#include "supervisor/stall.h"

static double since_s(uint64_t now, uint64_t then)
{
	return then && now > then ? (double)(now - then) / 1e9 : 0.0;
}

struct stall_verdict stall_decide_timeout(const struct worker_view *v,
					  const struct stall_limits *lim, uint64_t now)
{
	struct stall_verdict no = {STALL_NONE, 0};
	if (!v->p.pid)
		return no;
	if (v->kill_ns) /* already signalled: only the follow-up SIGKILL is left */
		return now - v->kill_ns > STALL_KILL_GRACE_NS
			       ? (struct stall_verdict){STALL_KILL, since_s(now, v->kill_ns)}
			       : no;
	if (v->stop_ns) {
		double s = since_s(now, v->stop_ns);
		return s > lim->stop_grace_s ? (struct stall_verdict){STALL_STOP_OVERDUE, s} : no;
	}
	double idle = since_s(now, v->heartbeat_ns);
	if (lim->timeout_s > 0 && idle > lim->timeout_s)
		return (struct stall_verdict){STALL_TIMEOUT, idle};
	return no;
}

enum stall_escalation stall_decide_escalation(const struct worker_view *v,
					      const struct stall_escalate_conf *c)
{
	if (!v->p.pid || v->stopping || v->kill_ns || c->action == 0 || c->after == 0)
		return STALL_ESC_NONE;
	if (v->stall.recent < c->after)
		return STALL_ESC_NONE;
	return c->action == 2 ? STALL_ESC_KILL : STALL_ESC_RECYCLE;
}
