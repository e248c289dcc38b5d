/* The event model (bjoern/meinheld style): one libev loop per worker serves
 * many keep-alive connections with non-blocking sockets (event_conn.c); the
 * app runs on the loop thread.  This file is the loop: accepting, timeouts,
 * the scoreboard tick and the graceful drain. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/accept_err.h"
#include "workers/event_priv.h"
#include "workers/wlog.h"

const int event_model_ready = 1;

#define ACCEPT_BATCH 4 /* connections taken per wakeup and listener */
#define MAX_EVENTS 64
#define BACKEND_TAG UINT64_MAX /* epoll data of libev's fd in the wait set */
#define CHAN_TAG (UINT64_MAX - 1) /* ... and of the hand-off channel */
#define LIBEV_MAX_PASSES 16 /* libev passes per wakeup (evw_dispatch) */
#define FAIR_WAIT_MAX_MS 100 /* deferring: look again at least this often */

/* Why the loop waits in its own epoll set rather than in libev: the listen
 * sockets are shared by all workers, and EPOLLEXCLUSIVE wakes one worker only
 * if that worker blocks in epoll_wait on the very set holding the socket.  A
 * set nested in libev's (ev_io on a private epoll fd) is woken through its
 * poll queue, where the kernel ignores exclusivity: every worker woke for each
 * connection (measured).  So the nesting is the other way round: our set holds
 * the listen sockets (exclusive) and libev's epoll fd; we block here, then
 * let libev dispatch the client sockets with EVRUN_NOWAIT. */

void ev_worker_wait(struct econn *ec, enum ec_wait wait, uint64_t now)
{
	struct ev_worker *w = ec->w;
	if (ec->wait != EC_WAIT_NONE) {
		struct ec_list *l = &w->waits[ec->wait];
		*(ec->prev ? &ec->prev->next : &l->head) = ec->next;
		*(ec->next ? &ec->next->prev : &l->tail) = ec->prev;
	}
	ec->wait = wait;
	ec->since_ns = now;
	ec->next = NULL;
	if (wait == EC_WAIT_NONE) {
		ec->prev = NULL;
		return;
	}
	/* Appended at "now": each list stays sorted by deadline. */
	struct ec_list *l = &w->waits[wait];
	ec->prev = l->tail;
	*(l->tail ? &l->tail->next : &l->head) = ec;
	l->tail = ec;
}

/* Whether this worker takes new connections at all (enum sb_accept), in the
 * slot for the other workers' fair share (sb_fair_to_accept).  Deferring to
 * a worker with fewer connections does not change it: a deferring worker
 * that showed NONE would vanish from the others' comparison, and the one
 * left would take every new client. */
static void evw_publish(struct ev_worker *w, uint64_t now)
{
	bool takes = !w->draining && w->nconns < w->cap && now >= w->paused_until_ns &&
		     req_budget_left(w->rt->env.budget);
	uint32_t lvl = takes ? SB_ACCEPT_FREE : SB_ACCEPT_NONE;
	if (lvl != w->level) {
		w->level = lvl;
		atomic_store_explicit(&w->rt->args->slot->listening, lvl, memory_order_relaxed);
	}
}

/* Deferring: judge the fair share again on a timer (sb_fair_wait_ms: soon
 * after the pool accepted anything, backing off to FAIR_WAIT_MAX_MS while
 * nothing moves).  Without it a deferring worker looked again only at its
 * next loop turn: up to a tick, or the next keepalive expiry, while the
 * worker it deferred to was busy or stalled (a new client waited 6.5 s,
 * measured). */
static void evw_defer(struct ev_worker *w, uint64_t now, bool fresh)
{
	w->fair_wait_ms = sb_fair_wait_ms(w->rt->args->sb, &w->pool_accepted, w->fair_wait_ms,
					  FAIR_WAIT_MAX_MS, fresh);
	w->fair_check_ns = now + w->fair_wait_ms * 1000000ull;
}

/* The listen sockets in or out of the wait set. */
static void evw_listen(struct ev_worker *w, bool on)
{
	const struct worker_args *a = w->rt->args;
	if (w->listening == on)
		return;
	for (size_t i = 0; i < a->nlisteners; i++) {
		struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = i};
		if (epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->listeners[i].fd, &e) < 0)
			wlog_error("epoll_ctl(%s, %s): %s", on ? "ADD" : "DEL", a->listeners[i].name,
				   strerror(errno));
	}
	w->listening = on;
}

/* Take up to a batch of queued connections from listener i. */
static bool evw_accept(struct ev_worker *w, size_t i)
{
	const struct worker_listener *l = &w->rt->args->listeners[i];
	bool any = false;
	for (int n = 0; n < ACCEPT_BATCH && w->nconns < w->cap; n++) {
		if (!sb_fair_to_accept(w->rt->args->sb, w->rt->args->slot)) {
			evw_listen(w, false); /* others have fewer: let them take it */
			evw_defer(w, w->now_ns, true);
			break;
		}
		/* A slot of max_requests for the connection's request, or the
		 * connection stays queued for another worker. */
		if (!req_budget_claim(w->rt->env.budget)) {
			evw_listen(w, false);
			break;
		}
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			req_budget_unclaim(w->rt->env.budget);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINVAL) {
				/* The master shut the listener: a graceful stop
				 * (TERM follows).  Drain, which stops listening. */
				atomic_store(&worker_draining, 1);
				break;
			}
			/* EMFILE, ENOBUFS...: let connections close first;
			 * the ones held are served meanwhile. */
			w->paused_until_ns = w->now_ns + worker_accept_failed(w->rt->args->slot,
									      l->name, errno,
									      w->now_ns);
			evw_listen(w, false);
			break;
		}
		sb_add(&w->rt->args->slot->accepted, 1);
		struct econn *ec = econn_new(w, fd, l);
		if (ec) {
			ec->c.slot_held = true;
		} else {
			wlog_error("out of memory for a connection from %s", l->name);
			req_budget_unclaim(w->rt->env.budget);
			close(fd);
		}
		any = true;
	}
	/* At the cap, new connections wait in the shared queue for others. */
	if (w->nconns >= w->cap)
		evw_listen(w, false);
	evw_publish(w, w->now_ns);
	return any;
}

/* Adopt the connections the master handed over (graceful stop).  true: some
 * (libev has new watchers).  A shut or closed channel leaves the wait set. */
static bool evw_take_handoffs(struct ev_worker *w)
{
	bool any = false;
	const struct worker_listener *l;
	int fd;
	while ((fd = worker_handoff_take(w->rt, &l)) >= 0) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || !econn_new(w, fd, l)) {
			wlog_error("cannot take a handed-over connection: %s", strerror(errno));
			close(fd);
			continue;
		}
		sb_add(&w->rt->args->slot->accepted, 1);
		any = true;
	}
	if (fd == -EPIPE && w->rt->args->handoff_fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->rt->args->handoff_fd, NULL);
	return any;
}

/* End of the drain: shut the hand-off channel (the master's later sends go
 * to another worker) and adopt what it still holds.  true: there was some. */
static bool evw_handoffs_left(struct ev_worker *w)
{
	if (!w->chan_shut) {
		worker_handoff_shut(w->rt);
		w->chan_shut = true;
	}
	return evw_take_handoffs(w);
}

static uint64_t limit_ns(const struct ev_worker *w, int k)
{
	return (uint64_t)(w->limit_s[k] * 1e9);
}

/* Close what waited too long; only list heads need a look. */
static bool evw_expire(struct ev_worker *w, uint64_t now)
{
	bool any = false;
	for (int k = 0; k < EC_NWAITS; k++) {
		struct econn *ec;
		while ((ec = w->waits[k].head) && ec->since_ns + limit_ns(w, k) <= now) {
			econn_timeout(ec);
			if (w->waits[k].head == ec) /* must not happen: never loop */
				econn_destroy(ec);
			any = true;
		}
	}
	return any;
}

/* Time until the next tick or connection deadline, for epoll_wait. */
static int evw_wait_ms(const struct ev_worker *w, uint64_t now)
{
	uint64_t next = w->next_tick_ns;
	for (int k = 0; k < EC_NWAITS; k++)
		if (w->waits[k].head && w->waits[k].head->since_ns + limit_ns(w, k) < next)
			next = w->waits[k].head->since_ns + limit_ns(w, k);
	if (w->paused_until_ns > now && w->paused_until_ns < next)
		next = w->paused_until_ns;
	if (w->level == SB_ACCEPT_FREE && !w->listening && w->fair_check_ns < next)
		next = w->fair_check_ns;
	return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

static void evw_begin_drain(struct ev_worker *w, uint64_t now)
{
	const struct drover_conf *conf = w->rt->args->conf;
	w->draining = true;
	evw_listen(w, false);
	sb_set_state(w->rt->args->slot, SB_DRAINING);
	/* Finish before the master's SIGKILL at graceful_timeout. */
	uint64_t grace = (uint64_t)(conf->graceful_timeout * 1e9);
	uint64_t margin = grace / 10 < 500000000ull ? grace / 10 : 500000000ull;
	w->drain_deadline_ns = now + grace - margin;
	wlog_debug("worker %u draining: %u connections, %u requests in flight",
		   w->rt->args->worker_no, w->nconns, w->inflight);
	/* Idle keep-alive connections are not closed early: the client's next
	 * request is answered with Connection: close (RFC 9112 section 9.6),
	 * so no request crosses our FIN; one that sends nothing more is closed
	 * at its keepalive deadline (evw_expire), as without a drain, or at the
	 * drain deadline.  Busy ones end after their response. */
}

/* The duties of one loop turn outside libev.  true: libev has new work
 * (watchers changed) even if its fd is not ready. */
static bool evw_turn(struct ev_worker *w)
{
	uint64_t now = w->now_ns;
	bool dirty = false;
	if (now >= w->next_tick_ns) {
		worker_idle_point(w->rt);
		w->next_tick_ns = now + (uint64_t)worker_tick_ms(w->rt->args->conf) * 1000000ull;
	}
	if (!w->draining && atomic_load(&worker_draining)) {
		evw_begin_drain(w, now);
		dirty = true;
	}
	dirty |= evw_expire(w, now);
	/* Not taking new clients (draining, full, out of fds, no slot of
	 * max_requests left): stop listening before the next wait, so the
	 * kernel wakes another worker for the next connection. */
	evw_publish(w, now);
	if (w->level != SB_ACCEPT_FREE) {
		evw_listen(w, false);
	} else if (!w->listening && now >= w->fair_check_ns) {
		if (sb_fair_to_accept(w->rt->args->sb, w->rt->args->slot))
			evw_listen(w, true);
		else
			evw_defer(w, now, false);
	}
	return dirty;
}

/* Run libev's callbacks for what is ready, until the watcher set is settled.
 * libev writes watcher changes (ev_io_start/stop/set) into its epoll set only
 * at the start of its next ev_run, before it polls (fd_reify).  A change made
 * by a callback -- write interest after EAGAIN, read re-armed after the
 * output drained, a connection closed -- therefore stays invisible to the
 * epoll_wait of evw_loop_run until libev runs again, and with nothing else to
 * wake that wait the change never takes effect: a large response stalls (the
 * lost wakeup of PITFALLS.md, "Nested epoll and libev").  So libev runs again
 * after every pass that invoked a callback; a pass that invoked none applied
 * every change and found nothing ready, so the kernel's view is complete.
 * Connection deadlines are not libev timers: evw_wait_ms reads them from
 * w->waits after this returns, so a wait changed by a callback is seen too.
 * Bounded, so that a flood of ready sockets cannot starve accepting and the
 * tick; then w->unsettled makes the next epoll_wait not block. */
static void evw_invoke_pending(struct ev_loop *loop)
{
	struct ev_worker *w = ev_userdata(loop);
	if (ev_pending_count(loop))
		w->invoked = true;
	ev_invoke_pending(loop);
}

static void evw_dispatch(struct ev_worker *w)
{
	for (int pass = 0; pass < LIBEV_MAX_PASSES; pass++) {
		w->invoked = false;
		ev_run(w->loop, EVRUN_NOWAIT);
		if (!w->invoked) {
			w->unsettled = false;
			return;
		}
		w->now_ns = sb_now_ns(); /* callbacks may have taken a while */
	}
	w->unsettled = true;
}

/* libev does not export its epoll fd.  The loop's first fd is that epoll fd
 * (inotify, signalfd and timerfd are made lazily), and a new fd takes the
 * lowest free number: probe that number, then check it is an epoll fd. */
static int evw_setup(struct ev_worker *w)
{
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		wlog_error("epoll_create1: %s", strerror(errno));
		return -1;
	}
	int guess = fcntl(w->epfd, F_DUPFD_CLOEXEC, 0);
	if (guess >= 0)
		close(guess);
	w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOINOTIFY | EVFLAG_NOSIGMASK);
	if (!w->loop) {
		wlog_error("ev_loop_new(EVBACKEND_EPOLL) failed");
		return -1;
	}
	ev_set_userdata(w->loop, w);
	ev_set_invoke_pending_cb(w->loop, evw_invoke_pending);
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = BACKEND_TAG};
	if (guess < 0 || epoll_wait(guess, &e, 1, 0) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, guess, &e) < 0) {
		wlog_error("cannot find libev's epoll fd (%d): %s", guess, strerror(errno));
		return -1;
	}
	int chan = w->rt->args->handoff_fd;
	struct epoll_event c = {.events = EPOLLIN, .data.u64 = CHAN_TAG};
	if (chan >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, chan, &c) < 0)
		wlog_error("epoll_ctl(hand-off channel): %s", strerror(errno));
	return 0;
}

static void evw_teardown(struct ev_worker *w)
{
	for (int k = 0; k < EC_NWAITS; k++)
		while (w->waits[k].head)
			econn_destroy(w->waits[k].head);
	if (w->loop)
		ev_loop_destroy(w->loop);
	if (w->epfd >= 0)
		close(w->epfd);
}

static void evw_init(struct ev_worker *w, struct worker_rt *rt)
{
	const struct drover_conf *conf = rt->args->conf;
	memset(w, 0, sizeof(*w));
	w->rt = rt;
	w->epfd = -1;
	w->cap = conf->worker_connections > 0 ? (unsigned)conf->worker_connections : 1;
	w->limit_s[EC_WAIT_HEAD] = conf->header_timeout;
	w->limit_s[EC_WAIT_IDLE] = conf->keepalive;
	w->limit_s[EC_WAIT_BODY] = conf->read_timeout;
	w->limit_s[EC_WAIT_WRITE] = conf->send_timeout;
	w->limit_s[EC_WAIT_LINGER] = EV_LINGER_S;
	w->now_ns = sb_now_ns();
}

static void evw_loop_run(struct ev_worker *w)
{
	struct sb_slot *s = w->rt->args->slot;
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		w->now_ns = sb_now_ns();
		bool dirty = evw_turn(w);
		if (w->draining && w->now_ns >= w->drain_deadline_ns)
			break;
		if (w->draining && w->nconns == 0) {
			if (!evw_handoffs_left(w))
				break;
			dirty = true;
		}
		if (dirty || w->unsettled)
			evw_dispatch(w); /* apply watcher changes before blocking */
		int ms = w->unsettled ? 0 : evw_wait_ms(w, w->now_ns);
		int n = epoll_wait(w->epfd, evs, MAX_EVENTS, ms);
		if (n < 0 && errno != EINTR) {
			wlog_error("epoll_wait: %s", strerror(errno));
			break;
		}
		w->now_ns = sb_now_ns();
		sb_store(&s->heartbeat_ns, w->now_ns);
		bool run = false;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == BACKEND_TAG)
				run = true;
			else if (evs[i].data.u64 == CHAN_TAG)
				run |= evw_take_handoffs(w);
			else if (w->listening)
				run |= evw_accept(w, (size_t)evs[i].data.u64);
		}
		if (run)
			evw_dispatch(w);
	}
}

int event_run(struct worker_rt *rt)
{
	struct ev_worker w;
	struct sb_slot *s = rt->args->slot;
	evw_init(&w, rt);
	if (evw_setup(&w) < 0) {
		evw_teardown(&w);
		return WORKER_EXIT_BOOT;
	}
	rt->env.keepalive_ok = true;
	sb_store(&s->booted_ns, sb_now_ns());
	sb_set_state(s, SB_IDLE);
	evw_publish(&w, sb_now_ns());
	evw_listen(&w, true);
	evw_loop_run(&w);
	if (w.nconns)
		wlog_warn("worker %u: %u connections still open at the end of graceful_timeout",
			  rt->args->worker_no, w.nconns);
	sb_set_state(s, SB_DRAINING);
	evw_teardown(&w);
	return WORKER_EXIT_OK;
}
