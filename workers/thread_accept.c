/* Which worker of the pool takes a new connection, in the thread model.
 *
 * The kernel wakes one poller per connection (the listeners are in each
 * epoll set with EPOLLEXCLUSIVE), the first sleeping one in the listener's
 * wait queue, not the least loaded: left to it, a burst of keep-alive
 * clients piles on one worker for the life of the connections.  So:
 *  - every worker publishes its accept level (enum sb_accept) in its slot,
 *    and leaves the listeners out of its epoll set while another accepting
 *    worker holds fewer connections (sb_fair_to_accept).  That verdict is
 *    renewed after each accept and, while deferring, on a short timer: a
 *    worker deferring on a stale verdict must not leave nobody listening;
 *  - a worker holding 2 or more connections above the least loaded one
 *    asks the excess to reconnect (Connection: close after their next
 *    response; sb_excess_connections), for clients that came before the
 *    others booted or replaced a worker;
 *  - overload: a worker with no free thread does not watch the listeners
 *    (a new client would wait behind the running requests, while another
 *    worker may have a free thread; and a worker stuck in long requests
 *    leaves its queue to the master's hand-off at a stop).  But keep-alive
 *    clients cycling through the threads could then keep it saturated for
 *    good, and a new client waits in the kernel queue without bound.  So a
 *    saturated worker that is still completing requests peeks at the
 *    listeners every PEEK_MS and takes what waits into its FIFO ready
 *    queue, where the new client's request waits its turn like the next
 *    request of a keep-alive one. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>

#include "workers/thread_priv.h"
#include "workers/wlog.h"

#define FAIR_WAIT_MAX_MS 50 /* deferring: look again at least this often */
#define STUCK_MS 250 /* saturated with no request completed for this long: stuck */
#define PEEK_MS 5 /* saturated: look at the listen queues this often */
#define PEEK_BATCH 16 /* connections taken per listener and peek */

/* How this worker would serve a new client now (enum sb_accept), mu held. */
static uint32_t accept_level_locked(const struct tpool *tp)
{
	if (tp->draining || sb_now_ns() < tp->accept_paused_until_ns ||
	    tp->nconns >= (unsigned)tp->conf->worker_connections ||
	    !req_budget_left(tp->rt->env.budget))
		return SB_ACCEPT_NONE;
	return tp->nready + tp->busy < tp->nthreads ? SB_ACCEPT_FREE : SB_ACCEPT_QUEUED;
}

/* Saturated and no request completed for STUCK_MS (every thread held by a
 * long request): the worker takes nothing from the queue now (it peeks
 * only while completing requests), so it says NONE, and a worker deferring
 * to it for its fewer connections takes the new client instead (it waited
 * for the long requests to end, 3.5 s measured, beside free threads). */
static bool stuck_locked(struct tpool *tp)
{
	uint64_t now = sb_now_ns(), done = sb_load(&tp->slot->requests);
	if (tp->level == SB_ACCEPT_FREE || done != tp->stuck_requests) {
		tp->stuck_requests = done;
		tp->stuck_since_ns = now;
		return false;
	}
	return now - tp->stuck_since_ns >= STUCK_MS * 1000000ull;
}

static void publish_level_locked(struct tpool *tp)
{
	uint32_t lvl = accept_level_locked(tp);
	if (lvl == SB_ACCEPT_QUEUED && stuck_locked(tp))
		lvl = SB_ACCEPT_NONE;
	else if (lvl == SB_ACCEPT_FREE)
		tp->stuck_requests = ~0ull; /* saturation starts afresh */
	if (lvl != tp->level) {
		if (lvl == SB_ACCEPT_QUEUED) /* saturated from now: see peek() */
			tp->sat_requests = sb_load(&tp->slot->requests);
		tp->level = lvl;
		atomic_store_explicit(&tp->slot->listening, lvl, memory_order_relaxed);
	}
}

/* Watch the listen sockets while a thread is free and no other worker is a
 * better place; DEL + ADD (not MOD: EPOLLEXCLUSIVE forbids it).  The fair
 * verdict (tp->deferring) is renewed only by tp_check_fair: re-judging it
 * here, at every request, would flip the listeners in and out of epoll as
 * the other workers' levels flicker under load. */
void tp_gate_locked(struct tpool *tp)
{
	publish_level_locked(tp);
	bool want = tp->level == SB_ACCEPT_FREE && !tp->deferring;
	if (want == tp->listening)
		return;
	const struct worker_args *a = tp->rt->args;
	for (size_t i = 0; i < a->nlisteners; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = i};
		if (epoll_ctl(tp->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->listeners[i].fd,
			      &ev) < 0)
			wlog_error("epoll_ctl(%s, listener %s): %s", want ? "ADD" : "DEL",
				   a->listeners[i].name, strerror(errno));
	}
	tp->listening = want;
}

void tp_check_fair(struct tpool *tp)
{
	pthread_mutex_lock(&tp->mu);
	publish_level_locked(tp); /* sb_fair_to_accept reads it */
	tp->deferring = tp->level != SB_ACCEPT_NONE &&
			!sb_fair_to_accept(tp->rt->args->sb, tp->slot);
	tp_gate_locked(tp);
	pthread_mutex_unlock(&tp->mu);
}

void tp_accept_tick(struct tpool *tp)
{
	tp_check_fair(tp);
	unsigned excess = tp->draining ? 0 : sb_excess_connections(tp->rt->args->sb, tp->slot);
	atomic_store_explicit(&tp->shed, excess, memory_order_relaxed);
}

/* Deferring: look at the fair share again (sb_fair_wait_ms: soon after the
 * pool accepted anything, backing off while nothing moves). */
static void fair_recheck(struct tpool *tp, unsigned max_ms, uint64_t now)
{
	tp->fair_wait_ms = sb_fair_wait_ms(tp->rt->args->sb, &tp->pool_accepted, tp->fair_wait_ms,
					   max_ms < FAIR_WAIT_MAX_MS ? max_ms : FAIR_WAIT_MAX_MS, false);
	tp->fair_check_ns = now + tp->fair_wait_ms * 1000000ull;
	tp_check_fair(tp);
}

/* Saturated and still completing requests: take what waits in the listen
 * queues (see the top of the file), one connection at a time so that the
 * fair share is judged after each.  "Still completing": a request ended
 * since the worker became saturated, so its threads cycle through clients;
 * threads all held by long requests leave the queue alone. */
static void peek(struct tpool *tp)
{
	const struct worker_args *a = tp->rt->args;
	pthread_mutex_lock(&tp->mu);
	bool go = tp->level == SB_ACCEPT_QUEUED && !tp->listening && !tp->deferring &&
		  sb_load(&tp->slot->requests) != tp->sat_requests;
	pthread_mutex_unlock(&tp->mu);
	if (!go)
		return;
	for (size_t i = 0; i < a->nlisteners; i++) {
		for (int n = 0; n < PEEK_BATCH; n++) {
			struct pollfd p = {.fd = a->listeners[i].fd, .events = POLLIN};
			if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
				break;
			tc_accept(tp, i);
			if (tp->deferring || tp->level == SB_ACCEPT_NONE)
				return;
		}
	}
}

int tp_accept_timer(struct tpool *tp, int wait_ms, uint64_t now)
{
	uint64_t due = now + (uint64_t)wait_ms * 1000000ull;
	if (tp->deferring) {
		if (now >= tp->fair_check_ns)
			fair_recheck(tp, (unsigned)wait_ms, now);
		if (tp->deferring && tp->fair_check_ns < due)
			due = tp->fair_check_ns;
	}
	uint32_t lvl = __atomic_load_n(&tp->level, __ATOMIC_RELAXED);
	if (lvl == SB_ACCEPT_QUEUED || (lvl == SB_ACCEPT_NONE && tp->stuck_requests != ~0ull)) {
		if (now >= tp->peek_ns) {
			pthread_mutex_lock(&tp->mu); /* still completing requests? */
			publish_level_locked(tp);
			pthread_mutex_unlock(&tp->mu);
			peek(tp);
			tp->peek_ns = now + PEEK_MS * 1000000ull;
		}
		if (tp->peek_ns < due)
			due = tp->peek_ns;
	}
	return due <= now ? 0 : (int)((due - now + 999999) / 1000000ull);
}
