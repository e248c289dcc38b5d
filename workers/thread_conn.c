/* The life of one connection in the thread model.  The poller accepts it,
 * reads request heads without blocking and hands complete ones to a request
 * thread; the thread serves (pipelined requests too) and gives the
 * connection back idle, so a slow or idle client never holds a thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/accept_err.h"
#include "workers/thread_priv.h"
#include "workers/wlog.h"

#define READ_CHUNK 16384
#define LINGER_NS 2000000000ull /* as http_conn_close: time to read leftovers away */
#define LINGER_READS 64 /* per event: a flooding client cannot hold the poller */
#define LINGER_NEXT_S 0.001

static uint64_t secs_ns(double s)
{
	return (uint64_t)(s * 1e9);
}

static void arm(struct tconn *tc)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = tc};
	if (epoll_ctl(tc->tp->epfd, EPOLL_CTL_MOD, tc->c.fd, &ev) < 0)
		wlog_error("epoll_ctl(MOD, %d): %s", tc->c.fd, strerror(errno));
}

/* Read what the socket holds, without waiting, until a head parses.
 * >=0: head ready (0) or an HTTP error status; -EAGAIN: need more; -1: the
 * peer closed or failed. */
static int try_head(struct tconn *tc)
{
	struct http_conn *c = &tc->c;
	for (;;) {
		int st = http_conn_parse_head(c);
		if (st != -EAGAIN)
			return st;
		if (http_buf_reserve(&c->in, READ_CHUNK) < 0)
			return -1;
		ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
		if (n > 0) {
			c->in.len += (size_t)n;
			tc->head_started = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		return -1;
	}
}

/* Queue a connection whose head is parsed; mu held.  The caller wakes a
 * request thread (pthread_cond_signal) after unlocking mu: signalled under
 * the lock, the thread wakes only to block on mu, still held here (perf:
 * 13% of the worker's time in __lll_lock_wait at wrk -c50). */
static void dispatch_locked(struct tpool *tp, struct tconn *tc, int st)
{
	tc->st = st;
	tc->qnext = NULL;
	atomic_store_explicit(&tc->state, TC_QUEUED, memory_order_release);
	if (tp->ready_tail)
		tp->ready_tail->qnext = tc;
	else
		tp->ready = tc;
	tp->ready_tail = tc;
	tp->nready++;
	tp_gate_locked(tp);
}

static void unlink_locked(struct tpool *tp, struct tconn *tc)
{
	if (tc->prev)
		tc->prev->next = tc->next;
	else
		tp->conns = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	tp->nconns--;
	atomic_fetch_sub_explicit(&tp->slot->connections, 1, memory_order_relaxed);
	tp_gate_locked(tp);
}

/* Out of epoll and closed.  The memory is freed by the caller's side: at
 * once by the poller, via tp->dead for a request thread (an event for the
 * connection may sit in the poller's current batch). */
static void drop_fd(struct tconn *tc)
{
	epoll_ctl(tc->tp->epfd, EPOLL_CTL_DEL, tc->c.fd, NULL);
	close(tc->c.fd);
	tc->c.fd = -1;
	http_conn_free(&tc->c);
}

static void destroy_by_poller(struct tpool *tp, struct tconn *tc)
{
	pthread_mutex_lock(&tp->mu);
	unlink_locked(tp, tc);
	pthread_mutex_unlock(&tp->mu);
	drop_fd(tc);
	free(tc);
}

static bool has_unread(struct tconn *tc)
{
	return http_conn_unread_input(&tc->c, tc->c.fd);
}

/* Close politely from the poller: with unread input, shut our side and
 * linger (a close with unread input sends a RST that can destroy a response
 * still in flight), else close at once. */
static void shut_by_poller(struct tpool *tp, struct tconn *tc, uint64_t now)
{
	if (!has_unread(tc) || shutdown(tc->c.fd, SHUT_WR) < 0) {
		destroy_by_poller(tp, tc);
		return;
	}
	tc->deadline_ns = now + LINGER_NS;
	atomic_store_explicit(&tc->state, TC_LINGER, memory_order_release);
	arm(tc);
}

static int accept_one(struct tpool *tp, int lfd, const char *name)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
	    errno == ECONNABORTED)
		return fd;
	if (errno == EINVAL) {
		/* The master shut the listener (graceful stop; TERM follows):
		 * drain now, which stops watching it. */
		atomic_store(&worker_draining, 1);
		return -1;
	}
	/* EMFILE and friends: the listener stays readable, so stop watching
	 * it for a while (housekeeping re-opens the gate); the connections
	 * held are served meanwhile. */
	uint64_t now = sb_now_ns();
	uint64_t pause = worker_accept_failed(tp->slot, name, errno, now);
	pthread_mutex_lock(&tp->mu);
	tp->accept_paused_until_ns = now + pause;
	tp_gate_locked(tp);
	pthread_mutex_unlock(&tp->mu);
	return -1;
}

/* A new connection (accepted, or handed over by the master) joins the
 * poller: its head is read now if there, else when it arrives.  slot: it
 * holds a slot of max_requests. */
static void tc_adopt(struct tpool *tp, int fd, const struct worker_listener *l, bool slot)
{
	struct tconn *tc = calloc(1, sizeof(*tc));
	if (!tc) {
		close(fd);
		if (slot)
			req_budget_unclaim(tp->rt->env.budget);
		return;
	}
	tc->tp = tp;
	http_conn_init(&tc->c, &tp->rt->env, &conn_io_progress, fd, l, NULL);
	tc->c.model_data = tc;
	tc->c.slot_held = slot;
	tc->idle_since_ns = sb_now_ns();
	tc->deadline_ns = tc->idle_since_ns + secs_ns(tp->conf->header_timeout);
	/* The request is often there already: skip a trip through epoll. */
	int st = try_head(tc);
	struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = tc};
	if (st == -EAGAIN)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (st == -1 || epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		http_conn_free(&tc->c);
		free(tc);
		return;
	}
	sb_add(&tp->slot->accepted, 1);
	atomic_fetch_add_explicit(&tp->slot->connections, 1, memory_order_relaxed);
	atomic_store_explicit(&tc->state, TC_POLLED, memory_order_relaxed);
	pthread_mutex_lock(&tp->mu);
	tc->next = tp->conns;
	if (tp->conns)
		tp->conns->prev = tc;
	tp->conns = tc;
	tp->nconns++;
	if (st != -EAGAIN)
		dispatch_locked(tp, tc, st);
	else
		tp_gate_locked(tp);
	pthread_mutex_unlock(&tp->mu);
	if (st != -EAGAIN)
		pthread_cond_signal(&tp->cv);
}

/* One connection per wake-up: the others in the queue wake other workers
 * (the listeners are EPOLLEXCLUSIVE), which spreads the clients. */
void tc_accept(struct tpool *tp, size_t which)
{
	const struct worker_listener *l = &tp->rt->args->listeners[which];
	/* A slot of max_requests for its request.  The gate stops watching
	 * the listeners when none is left, but a request thread may take the
	 * last one while this wake-up is on its way: the connection is then
	 * accepted anyway (the wake-up was ours; declining it would leave the
	 * connection queued with no worker woken for it) and the gate closes. */
	bool slot = req_budget_claim(tp->rt->env.budget);
	int fd = accept_one(tp, l->fd, l->name);
	if (fd >= 0)
		tc_adopt(tp, fd, l, slot);
	else if (slot)
		req_budget_unclaim(tp->rt->env.budget);
	tp_check_fair(tp); /* one more connection: still the best place? */
}

unsigned tc_take_handoffs(struct tpool *tp)
{
	unsigned n = 0;
	const struct worker_listener *l;
	int fd;
	while ((fd = worker_handoff_take(tp->rt, &l)) >= 0) {
		tc_adopt(tp, fd, l, false);
		n++;
	}
	if (fd == -EPIPE && tp->rt->args->handoff_fd >= 0)
		epoll_ctl(tp->epfd, EPOLL_CTL_DEL, tp->rt->args->handoff_fd, NULL);
	return n;
}

static void linger_read(struct tpool *tp, struct tconn *tc)
{
	char sink[4096];
	for (int i = 0; i < LINGER_READS; i++) {
		ssize_t n = recv(tc->c.fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		destroy_by_poller(tp, tc); /* EOF: the client read all and closed */
		return;
	}
	arm(tc);
}

void tc_event(struct tpool *tp, struct tconn *tc)
{
	int s = atomic_load_explicit(&tc->state, memory_order_acquire);
	if (s == TC_LINGER) {
		linger_read(tp, tc);
		return;
	}
	if (s != TC_POLLED)
		return; /* hang-up seen while a thread has it: the thread finds out */
	bool started = tc->head_started;
	int st = try_head(tc);
	if (st == -1) {
		destroy_by_poller(tp, tc);
		return;
	}
	if (st == -EAGAIN) {
		if (!started && tc->head_started) /* the idle time ends, the head time runs */
			tc->deadline_ns = sb_now_ns() + secs_ns(tp->conf->header_timeout);
		arm(tc);
		return;
	}
	pthread_mutex_lock(&tp->mu);
	dispatch_locked(tp, tc, st);
	pthread_mutex_unlock(&tp->mu);
	pthread_cond_signal(&tp->cv);
}

/* Whether the poller should close tc now (mu held, tc the poller's): at its
 * deadline only, draining or not.  A draining worker does not close idle
 * keep-alive connections early: the client's next request is answered with
 * Connection: close (RFC 9112 section 9.6), so no request can cross our FIN
 * and meet a reset; a client that sends nothing more closes first (its idle
 * timeout is below our keepalive, as deployments set it) or is closed at its
 * keepalive deadline, as without a drain.  graceful_timeout bounds it all
 * (drain_done).  HAProxy's idle-close-on-response, for the same race. */
static bool sweep_wants(struct tconn *tc, uint64_t now)
{
	int s = atomic_load_explicit(&tc->state, memory_order_acquire);
	return (s == TC_POLLED || s == TC_LINGER) && now >= tc->deadline_ns;
}

void tc_sweep(struct tpool *tp, uint64_t now)
{
	struct tconn *list = NULL;
	pthread_mutex_lock(&tp->mu);
	for (struct tconn *tc = tp->conns; tc; tc = tc->next) {
		if (sweep_wants(tc, now)) {
			tc->qnext = list;
			list = tc;
		}
	}
	pthread_mutex_unlock(&tp->mu);
	while (list) {
		struct tconn *tc = list;
		list = tc->qnext;
		if (atomic_load_explicit(&tc->state, memory_order_relaxed) == TC_LINGER)
			destroy_by_poller(tp, tc);
		else /* a head timed out, or keep-alive idle: bytes may be on their way */
			shut_by_poller(tp, tc, now);
	}
}

void tc_close_all(struct tpool *tp)
{
	pthread_mutex_lock(&tp->mu);
	struct tconn *list = tp->conns;
	tp->conns = NULL;
	pthread_mutex_unlock(&tp->mu);
	while (list) {
		struct tconn *tc = list;
		list = tc->next;
		drop_fd(tc);
		free(tc);
	}
}

/* ---- request thread side ---- */

/* Back to the poller, idle or with part of the next head read. */
static void give_back(struct tpool *tp, struct tconn *tc)
{
	http_conn_shrink(&tc->c);
	double t = tc->head_started ? tp->conf->header_timeout : tp->conf->keepalive;
	tc->idle_since_ns = sb_now_ns();
	tc->deadline_ns = tc->idle_since_ns + secs_ns(t);
	pthread_mutex_lock(&tp->mu);
	tp->busy--;
	/* Under mu: the poller's sweep must not close it before it is armed. */
	atomic_store_explicit(&tc->state, TC_POLLED, memory_order_release);
	arm(tc);
	tp_gate_locked(tp);
	tp_set_state_locked(tp);
	pthread_mutex_unlock(&tp->mu);
}

/* After Connection: close.  Unread input: shut our side and let the poller
 * linger, so this thread is free at once. */
static void finish(struct tpool *tp, struct tconn *tc)
{
	bool linger = has_unread(tc) && shutdown(tc->c.fd, SHUT_WR) == 0;
	if (!linger)
		drop_fd(tc);
	pthread_mutex_lock(&tp->mu);
	tp->busy--;
	if (linger) {
		tc->deadline_ns = sb_now_ns() + LINGER_NS;
		atomic_store_explicit(&tc->state, TC_LINGER, memory_order_release);
		arm(tc);
	} else {
		unlink_locked(tp, tc);
		tc->qnext = tp->dead;
		tp->dead = tc;
	}
	tp_gate_locked(tp);
	tp_set_state_locked(tp);
	pthread_mutex_unlock(&tp->mu);
}

/* After a keep-alive response, wait a moment for the client's next request
 * on this thread: when it comes, the hand-off to the poller and back (an
 * epoll re-arm and two thread wake-ups) is saved.  Only while no request
 * waits for a thread and the worker is not draining, and never longer than
 * LINGER_NEXT_S, so an idle client still does not hold a thread. */
static bool linger_for_next(struct tpool *tp, struct http_conn *c)
{
	/* Only while every connection of the worker can have a thread.  With
	 * more, the others' next requests wait in the poller, unseen here
	 * until it runs: a thread lingering on its own client then serves it
	 * again and again ahead of them (under load, p99 went to 70-400 ms
	 * while the lingering clients were answered in 0.1 ms). */
	if (tp->draining || atomic_load_explicit(&worker_draining, memory_order_relaxed) ||
	    __atomic_load_n(&tp->nconns, __ATOMIC_RELAXED) > tp->nthreads ||
	    __atomic_load_n(&tp->nready, __ATOMIC_RELAXED) > 0)
		return false;
	return c->io->fill(c, LINGER_NEXT_S) > 0;
}

/* One of the connections to shed (see housekeeping), if any is left. */
static bool take_shed(struct tpool *tp)
{
	unsigned n = atomic_load_explicit(&tp->shed, memory_order_relaxed);
	while (n > 0)
		if (atomic_compare_exchange_weak_explicit(&tp->shed, &n, n - 1,
							  memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

void tc_serve(struct tthread *t, struct tconn *tc)
{
	struct tpool *tp = t->tp;
	struct http_conn *c = &tc->c;
	c->heartbeat = &t->sb->heartbeat_ns;
	int st = tc->st;
	enum conn_result r;
	tc->head_started = false;
	for (;;) {
		c->close_next = c->close_next || take_shed(tp);
		sb_store(&t->sb->req_start_ns, sb_now_ns());
		atomic_fetch_add_explicit(&tp->slot->inflight, 1, memory_order_relaxed);
		r = http_conn_dispatch(c, st);
		atomic_fetch_sub_explicit(&tp->slot->inflight, 1, memory_order_relaxed);
		sb_store(&t->sb->req_start_ns, 0);
		if (r != CONN_KEEP || (!http_conn_pending(c) && !linger_for_next(tp, c)))
			break;
		/* Pipelined bytes: serve the next request here if its head is
		 * whole, else the poller waits for the rest. */
		st = http_conn_parse_head(c);
		if (st == -EAGAIN) {
			tc->head_started = true;
			break;
		}
	}
	if (r == CONN_KEEP)
		give_back(tp, tc);
	else
		finish(tp, tc);
}
