/* Unit tests of supervisor/stall.c: the timeout decision over synthetic
 * worker samples (no process, no clock). */
#include "check.h"
#include "supervisor/stall.h"

#define S 1000000000ull

static struct worker_view view(uint64_t heartbeat, uint64_t stop, uint64_t kill)
{
	struct worker_view v = {.heartbeat_ns = heartbeat, .stop_ns = stop, .kill_ns = kill};
	v.p.pid = 42;
	return v;
}

static void heartbeat_within_timeout(void)
{
	struct stall_limits lim = {.timeout_s = 30, .stop_grace_s = 30};
	struct worker_view v = view(10 * S, 0, 0);
	CHECK(stall_decide_timeout(&v, &lim, 40 * S).action == STALL_NONE);
	struct stall_verdict r = stall_decide_timeout(&v, &lim, 40 * S + 1);
	CHECK(r.action == STALL_TIMEOUT && r.seconds > 30 && r.seconds < 30.001);
}

static void timeout_zero_never(void)
{
	struct stall_limits lim = {.timeout_s = 0, .stop_grace_s = 30};
	struct worker_view v = view(1 * S, 0, 0);
	CHECK(stall_decide_timeout(&v, &lim, 100000 * S).action == STALL_NONE);
}

static void stopping_gets_its_grace(void)
{
	struct stall_limits lim = {.timeout_s = 1, .stop_grace_s = 5};
	struct worker_view v = view(1 * S, 10 * S, 0); /* no heartbeat: not a timeout */
	CHECK(stall_decide_timeout(&v, &lim, 15 * S).action == STALL_NONE);
	struct stall_verdict r = stall_decide_timeout(&v, &lim, 15 * S + 1);
	CHECK(r.action == STALL_STOP_OVERDUE);
}

static void kill_follows_abort(void)
{
	struct stall_limits lim = {.timeout_s = 1, .stop_grace_s = 5};
	struct worker_view v = view(1 * S, 0, 20 * S);
	CHECK(stall_decide_timeout(&v, &lim, 20 * S + STALL_KILL_GRACE_NS).action == STALL_NONE);
	CHECK(stall_decide_timeout(&v, &lim, 20 * S + STALL_KILL_GRACE_NS + 1).action == STALL_KILL);
	v.stop_ns = 2 * S; /* killed while stopping: still only the kill */
	CHECK(stall_decide_timeout(&v, &lim, 20 * S + 2 * S).action == STALL_KILL);
}

static void no_worker_no_verdict(void)
{
	struct stall_limits lim = {.timeout_s = 1, .stop_grace_s = 1};
	struct worker_view v = view(1 * S, 0, 0);
	v.p.pid = 0;
	CHECK(stall_decide_timeout(&v, &lim, 100 * S).action == STALL_NONE);
}

int main(void)
{
	RUN(heartbeat_within_timeout);
	RUN(timeout_zero_never);
	RUN(stopping_gets_its_grace);
	RUN(kill_follows_abort);
	RUN(no_worker_no_verdict);
	return check_summary();
}
