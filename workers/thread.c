/* The thread model (gunicorn's gthread, without its stalls): conf->threads
 * request threads, and the main thread as poller owning the listen sockets
 * and every idle keep-alive connection in one epoll set.  The listen sockets
 * are watched only while a request thread is free, so a busy worker leaves
 * new clients to the others instead of queueing them behind a slow request
 * (thread_accept.c: the fair share across workers, and overload). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "workers/thread_priv.h"
#include "workers/wlog.h"

const int thread_model_ready = 1;

#define MAX_EVENTS 64
#define SWEEP_MS 200 /* keep-alive and header timeouts are this precise */
#define DRAIN_POLL_MS 20

/* ---- with tp->mu held ---- */

void tp_set_state_locked(struct tpool *tp)
{
	enum sb_state st = tp->busy ? SB_BUSY : tp->draining ? SB_DRAINING : SB_IDLE;
	sb_set_state(tp->slot, st);
	if (tp->draining && tp->busy == 0 && tp->nready == 0) {
		uint64_t one = 1; /* the poller may be done: wake it */
		ssize_t w = write(tp->evfd, &one, sizeof(one));
		(void)w;
	}
}

/* ---- request threads ---- */

static struct tconn *next_job(struct tthread *t)
{
	struct tpool *tp = t->tp;
	int tick = worker_tick_ms(tp->conf);
	pthread_mutex_lock(&tp->mu);
	while (!tp->ready && !tp->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += tick / 1000;
		ts.tv_nsec += (long)(tick % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&tp->cv, &tp->mu, &ts);
		sb_store(&t->sb->heartbeat_ns, sb_now_ns()); /* idle, and alive */
	}
	struct tconn *tc = tp->ready;
	if (tc) {
		tp->ready = tc->qnext;
		if (!tp->ready)
			tp->ready_tail = NULL;
		tp->nready--;
		tp->busy++;
		atomic_store_explicit(&tc->state, TC_SERVING, memory_order_relaxed);
		tp_set_state_locked(tp);
	}
	pthread_mutex_unlock(&tp->mu);
	return tc;
}

static void *request_thread(void *arg)
{
	struct tthread *t = arg;
	atomic_store_explicit(&t->sb->tid, (int32_t)syscall(SYS_gettid), memory_order_relaxed);
	struct tconn *tc;
	while ((tc = next_job(t))) {
		sb_store(&t->sb->heartbeat_ns, sb_now_ns());
		atomic_store_explicit(&t->sb->state, SB_BUSY, memory_order_release);
		tc_serve(t, tc);
		atomic_store_explicit(&t->sb->state, SB_IDLE, memory_order_release);
	}
	atomic_store_explicit(&t->sb->state, SB_EXITED, memory_order_release);
	return NULL;
}

/* Process-directed signals (TERM, URG, ...) go to the poller, whose
 * epoll_wait they interrupt; request threads inherit this mask. */
static void block_async_signals(sigset_t *old)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGURG, SIGHUP, SIGCHLD};
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void stop_threads(struct tpool *tp, unsigned started)
{
	pthread_mutex_lock(&tp->mu);
	tp->stopping = true;
	pthread_cond_broadcast(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tp->th[i].id, NULL);
}

static int start_threads(struct tpool *tp)
{
	sigset_t old;
	block_async_signals(&old);
	unsigned n = 0;
	for (; n < tp->nthreads; n++) {
		struct tthread *t = &tp->th[n];
		t->tp = tp;
		t->sb = n < SB_MAX_THREADS ? &tp->slot->threads[n] : &t->own;
		sb_store(&t->sb->heartbeat_ns, sb_now_ns());
		atomic_store(&t->sb->state, SB_IDLE);
		int rc = pthread_create(&t->id, NULL, request_thread, t);
		if (rc != 0) {
			wlog_error("pthread_create: %s", strerror(rc));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (n < tp->nthreads) {
		stop_threads(tp, n);
		return -1;
	}
	uint32_t shown = n < SB_MAX_THREADS ? n : SB_MAX_THREADS;
	atomic_store_explicit(&tp->slot->nthreads, shown, memory_order_release);
	return 0;
}

/* ---- the poller ---- */

/* The master times the worker out from slot->heartbeat_ns: fresh while the
 * poller runs, but as old as the last progress of a request thread stuck in
 * one request, so a hung request is noticed as in the sync model. */
static void stamp_heartbeat(struct tpool *tp, uint64_t now)
{
	uint64_t hb = now;
	for (unsigned i = 0; i < tp->nthreads; i++) {
		struct sb_thread *s = tp->th[i].sb;
		if (atomic_load_explicit(&s->state, memory_order_acquire) != SB_BUSY)
			continue;
		uint64_t t = atomic_load_explicit(&s->heartbeat_ns, memory_order_relaxed);
		if (t < hb)
			hb = t;
	}
	sb_store(&tp->slot->heartbeat_ns, hb);
}

static void begin_drain(struct tpool *tp, uint64_t now)
{
	tp->drain_deadline_ns = now + (uint64_t)(tp->conf->graceful_timeout * 1e9);
	pthread_mutex_lock(&tp->mu);
	tp->draining = true;
	tp_gate_locked(tp);
	tp_set_state_locked(tp);
	pthread_mutex_unlock(&tp->mu);
	wlog_debug("worker %u draining: %u connections open", tp->rt->args->worker_no, tp->nconns);
}

static void housekeeping(struct tpool *tp, uint64_t now)
{
	worker_idle_point(tp->rt);
	if (atomic_load(&worker_draining) && !tp->draining)
		begin_drain(tp, now);
	tc_sweep(tp, now);
	stamp_heartbeat(tp, now);
	pthread_mutex_lock(&tp->mu);
	tp_gate_locked(tp);
	tp_set_state_locked(tp);
	pthread_mutex_unlock(&tp->mu);
	tp_accept_tick(tp);
}

/* Connections closed by request threads: no event of theirs can come from
 * epoll_wait any more (they left the set before this call). */
static void free_dead(struct tpool *tp)
{
	pthread_mutex_lock(&tp->mu);
	struct tconn *d = tp->dead;
	tp->dead = NULL;
	pthread_mutex_unlock(&tp->mu);
	while (d) {
		struct tconn *n = d->qnext;
		free(d);
		d = n;
	}
}

static void on_events(struct tpool *tp, const struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t u = ev[i].data.u64;
		if (u < tp->rt->args->nlisteners) {
			tc_accept(tp, (size_t)u);
		} else if (u == TP_EV_CHAN) {
			tc_take_handoffs(tp);
		} else if (u == TP_EV_WAKE) {
			uint64_t v;
			ssize_t r = read(tp->evfd, &v, sizeof(v));
			(void)r;
		} else {
			tc_event(tp, ev[i].data.ptr);
		}
	}
}

/* The drain is over when no request runs or waits and no connection is
 * open; or, past graceful_timeout, when only idle connections are left. */
static bool drain_done(struct tpool *tp, uint64_t now)
{
	pthread_mutex_lock(&tp->mu);
	bool idle = tp->busy == 0 && tp->nready == 0;
	bool done = idle && tp->nconns == 0;
	unsigned busy = tp->busy;
	pthread_mutex_unlock(&tp->mu);
	if (done || now < tp->drain_deadline_ns)
		return done;
	if (idle)
		return true;
	/* Threads are inside the app: stopping the app under them is unsafe. */
	wlog_warn("worker %u: %u requests still running after graceful_timeout: exiting",
		  tp->rt->args->worker_no, busy);
	_exit(WORKER_EXIT_OK);
}

/* End of the drain: shut the hand-off channel (the master's later sends go
 * to another worker) and adopt what it still holds.  true: there was some. */
static bool handoffs_left(struct tpool *tp)
{
	if (!tp->chan_shut) {
		worker_handoff_shut(tp->rt);
		tp->chan_shut = true;
	}
	return tc_take_handoffs(tp) > 0;
}

static void poll_loop(struct tpool *tp)
{
	int tick = worker_tick_ms(tp->conf);
	int wait_ms = tick < SWEEP_MS ? tick : SWEEP_MS;
	uint64_t next_house = 0;
	struct epoll_event ev[MAX_EVENTS];
	for (;;) {
		free_dead(tp);
		int timeout = tp->draining ? DRAIN_POLL_MS : tp_accept_timer(tp, wait_ms, sb_now_ns());
		int n = epoll_wait(tp->epfd, ev, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			wlog_error("epoll_wait: %s", strerror(errno));
			n = 0;
		}
		if (n > 0)
			on_events(tp, ev, n);
		uint64_t now = sb_now_ns();
		bool drain_now = atomic_load(&worker_draining) && !tp->draining;
		if (now >= next_house || drain_now || tp->draining) {
			housekeeping(tp, now);
			next_house = now + (uint64_t)wait_ms * 1000000ull;
		}
		if (tp->draining && drain_done(tp, now) && !handoffs_left(tp))
			return;
	}
}

static int tp_init(struct tpool *tp, struct worker_rt *rt)
{
	memset(tp, 0, sizeof(*tp));
	tp->rt = rt;
	tp->conf = rt->args->conf;
	tp->slot = rt->args->slot;
	tp->nthreads = (unsigned)(tp->conf->threads > 0 ? tp->conf->threads : 1);
	tp->epfd = epoll_create1(EPOLL_CLOEXEC);
	tp->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	tp->th = calloc(tp->nthreads, sizeof(*tp->th));
	pthread_mutex_init(&tp->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tp->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (tp->epfd < 0 || tp->evfd < 0 || !tp->th) {
		wlog_error("thread worker setup: %s", strerror(errno));
		return -1;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TP_EV_WAKE};
	if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, tp->evfd, &ev) < 0) {
		wlog_error("epoll_ctl(eventfd): %s", strerror(errno));
		return -1;
	}
	int chan = rt->args->handoff_fd;
	struct epoll_event cev = {.events = EPOLLIN, .data.u64 = TP_EV_CHAN};
	if (chan >= 0 && epoll_ctl(tp->epfd, EPOLL_CTL_ADD, chan, &cev) < 0)
		wlog_error("epoll_ctl(hand-off channel): %s", strerror(errno));
	return 0;
}

static void tp_fini(struct tpool *tp)
{
	free_dead(tp);
	tc_close_all(tp);
	if (tp->epfd >= 0)
		close(tp->epfd);
	if (tp->evfd >= 0)
		close(tp->evfd);
	free(tp->th);
	pthread_cond_destroy(&tp->cv);
	pthread_mutex_destroy(&tp->mu);
}

int thread_run(struct worker_rt *rt)
{
	struct tpool tp;
	struct sb_slot *s = rt->args->slot;
	rt->env.keepalive_ok = true;
	int rc = tp_init(&tp, rt);
	if (rc == 0)
		rc = start_threads(&tp);
	if (rc < 0) {
		tp_fini(&tp);
		return WORKER_EXIT_BOOT;
	}
	pthread_mutex_lock(&tp.mu);
	tp_gate_locked(&tp);
	pthread_mutex_unlock(&tp.mu);
	sb_store(&s->booted_ns, sb_now_ns());
	sb_set_state(s, SB_IDLE);
	poll_loop(&tp);
	stop_threads(&tp, tp.nthreads);
	sb_set_state(s, SB_DRAINING);
	tp_fini(&tp);
	return WORKER_EXIT_OK;
}
