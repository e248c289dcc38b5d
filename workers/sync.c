/* The sync model (gunicorn's sync): one connection at a time, one request per
 * connection (Connection: close), so a worker is either idle in accept or busy
 * with exactly one client.  Listen sockets are non-blocking (the event model
 * shares them): accept first, and poll only when nothing is queued, so a
 * loaded worker makes no poll call at all.  At a graceful stop, what the
 * master took from the listen queues arrives on the hand-off channel and is
 * served before the worker exits. */
#include <errno.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/accept_err.h"
#include "workers/wlog.h"
#include "workers/worker_priv.h"

#define MAX_POLL_FDS 16

/* Accept from any listener, waiting up to one tick.  >=0: a client fd and
 * *which the listener; -1: nothing yet (tick, signal or error). */
static int sync_accept(struct worker_rt *rt, size_t *which, struct sockaddr_storage *peer)
{
	const struct worker_args *a = rt->args;
	size_t n = a->nlisteners < MAX_POLL_FDS ? a->nlisteners : MAX_POLL_FDS;
	for (size_t i = 0; i < n; i++) {
		socklen_t plen = sizeof(*peer);
		int fd = accept4(a->listeners[i].fd, (struct sockaddr *)peer, &plen, SOCK_CLOEXEC);
		if (fd >= 0) {
			*which = i;
			return fd;
		}
		if (errno == EINVAL) {
			/* The master shut the listener: a graceful stop, whose TERM
			 * follows.  Stop now rather than spin on a hung-up socket. */
			atomic_store(&worker_draining, 1);
			return -1;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED) {
			/* EMFILE and friends: the socket stays readable, so poll
			 * would return at once; wait for fds to free up instead
			 * (the queued client stays for another worker). */
			uint64_t ns = worker_accept_failed(a->slot, a->listeners[i].name, errno,
							   sb_now_ns());
			usleep((useconds_t)(ns / 1000));
			return -1;
		}
	}
	struct pollfd p[MAX_POLL_FDS];
	for (size_t i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = a->listeners[i].fd, .events = POLLIN};
	if (poll(p, n, worker_tick_ms(a->conf)) < 0 && errno != EINTR)
		wlog_error("poll: %s", strerror(errno));
	return -1;
}

/* peer: as accept() gave it, or NULL to ask the kernel. */
static void sync_serve(struct worker_rt *rt, int fd, const struct worker_listener *l,
		       const struct sockaddr *peer)
{
	struct sb_slot *s = rt->args->slot;
	struct http_conn c;
	sb_add(&s->accepted, 1);
	sb_set_state(s, SB_BUSY);
	atomic_store_explicit(&s->inflight, 1, memory_order_relaxed);
	atomic_store_explicit(&s->connections, 1, memory_order_relaxed);
	http_conn_init(&c, &rt->env, &conn_io_blocking, fd, l, peer);
	sb_store(&s->req_start_ns, sb_now_ns());
	while (http_conn_serve(&c) == CONN_KEEP && !atomic_load(&worker_draining))
		;
	http_conn_close(&c);
	http_conn_free(&c);
	sb_store(&s->req_start_ns, 0);
	atomic_store_explicit(&s->inflight, 0, memory_order_relaxed);
	atomic_store_explicit(&s->connections, 0, memory_order_relaxed);
	sb_set_state(s, atomic_load(&worker_draining) ? SB_DRAINING : SB_IDLE);
}

int sync_run(struct worker_rt *rt)
{
	struct sb_slot *s = rt->args->slot;
	rt->env.keepalive_ok = false; /* a kept connection would hold the only thread */
	sb_store(&s->booted_ns, sb_now_ns());
	sb_set_state(s, SB_IDLE);
	while (!atomic_load(&worker_draining)) {
		worker_idle_point(rt);
		if (atomic_load(&worker_draining))
			break;
		if (!req_budget_left(rt->env.budget)) {
			/* max_requests served: the master drains it once the
			 * successor accepts; meanwhile others take the queue. */
			poll(NULL, 0, worker_tick_ms(rt->args->conf));
			continue;
		}
		size_t which = 0;
		struct sockaddr_storage peer;
		int fd = sync_accept(rt, &which, &peer);
		if (fd >= 0)
			sync_serve(rt, fd, &rt->args->listeners[which], (struct sockaddr *)&peer);
	}
	sb_set_state(s, SB_DRAINING);
	/* Connections the master took from the listen queues: in flight too. */
	worker_handoff_shut(rt);
	const struct worker_listener *l;
	int fd;
	while ((fd = worker_handoff_take(rt, &l)) >= 0)
		sync_serve(rt, fd, l, NULL);
	return WORKER_EXIT_OK;
}
