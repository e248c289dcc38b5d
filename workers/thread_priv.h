/* What the thread model's poller (thread.c) and its connection handling
 * (thread_conn.c) share.  One mutex guards the ready queue, the list of open
 * connections, the busy count and whether the listen sockets are watched;
 * a connection's state says who owns it (the poller or a request thread). */
#ifndef DROVER_THREAD_PRIV_H
#define DROVER_THREAD_PRIV_H

#include <pthread.h>
#include <stdbool.h>

#include "workers/worker_priv.h"

enum tc_state {
	TC_POLLED, /* the poller's: idle keep-alive, or waiting for the rest of a head */
	TC_QUEUED, /* head parsed, waiting for a free request thread */
	TC_SERVING, /* a request thread's */
	TC_LINGER, /* write side shut: the poller reads leftovers away, then closes */
};

struct tpool;

struct tconn {
	struct http_conn c;
	struct tpool *tp;
	struct tconn *prev, *next; /* tp->conns (all open connections) */
	struct tconn *qnext; /* tp->ready, tp->dead, or a sweep's close list */
	_Atomic int state; /* enum tc_state */
	uint64_t deadline_ns; /* the poller closes it then (idle, head or linger time) */
	uint64_t idle_since_ns; /* last response sent (or accepted) */
	int st; /* head parse result handed to the request thread */
	bool head_started; /* bytes of the next head arrived: header_timeout runs */
};

struct tthread {
	struct tpool *tp;
	pthread_t id;
	struct sb_thread *sb; /* slot->threads[i], or `own` past SB_MAX_THREADS */
	struct sb_thread own;
};

struct tpool {
	struct worker_rt *rt;
	const struct drover_conf *conf;
	struct sb_slot *slot;
	int epfd, evfd;
	unsigned nthreads;
	struct tthread *th;
	uint64_t drain_deadline_ns;
	/* The poller's: when to look at the fair share again while deferring,
	 * the wait between looks, and the pool's accept count at the last. */
	uint64_t fair_check_ns;
	unsigned fair_wait_ms;
	uint64_t pool_accepted;
	uint64_t peek_ns; /* saturated: next look at the listen queues */
	/* Keep-alive connections above the fair share: that many end after
	 * their next response (set by the poller, taken by request threads). */
	_Atomic unsigned shed;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv; /* ready queue not empty, or stopping */
	struct tconn *ready, *ready_tail;
	struct tconn *conns; /* every open connection */
	struct tconn *dead; /* closed by request threads; freed by the poller */
	unsigned nready, busy, nconns;
	bool listening; /* listen sockets in epfd */
	bool deferring; /* another worker is a better place for new clients */
	uint32_t level; /* enum sb_accept, as published in slot->listening */
	uint64_t sat_requests; /* slot->requests when the level became QUEUED */
	/* Saturated: slot->requests at the last progress, and since when (ns);
	 * stuck_requests is ~0 while a thread is free. */
	uint64_t stuck_requests, stuck_since_ns;
	uint64_t accept_paused_until_ns; /* out of fds: not accepting before this */
	bool draining, stopping;
	bool chan_shut; /* end of the drain: the master sends no more */
};

/* epoll data of the non-connection fds: listeners are 0..nlisteners-1. */
#define TP_EV_WAKE 1000u
#define TP_EV_CHAN 1001u /* the hand-off channel from the master */

/* thread_conn.c.  Poller side: */
void tc_accept(struct tpool *tp, size_t which);
/* Adopt the connections the master handed over (graceful stop); how many.
 * A shut or closed channel leaves the epoll set. */
unsigned tc_take_handoffs(struct tpool *tp);
void tc_event(struct tpool *tp, struct tconn *tc);
/* Close connections past their deadline (header, keepalive, linger). */
void tc_sweep(struct tpool *tp, uint64_t now);
/* Request thread side: serve tc (taken off the ready queue) until it goes
 * back to the poller or is closed. */
void tc_serve(struct tthread *t, struct tconn *tc);
/* Close everything still open (end of the drain). */
void tc_close_all(struct tpool *tp);

/* thread_accept.c.  With tp->mu held: publish the accept level, and watch
 * the listeners while a thread is free and no other worker is a better
 * place (tp->deferring). */
void tp_gate_locked(struct tpool *tp);
/* Poller, mu not held: renew tp->deferring from the scoreboard. */
void tp_check_fair(struct tpool *tp);
/* Poller, at housekeeping: the fair verdict, and how many keep-alive
 * connections to shed. */
void tp_accept_tick(struct tpool *tp);
/* Poller, before each wait: the fair re-check while deferring and the
 * listen-queue peek while saturated, when due; returns wait_ms or less
 * (milliseconds until the next is due). */
int tp_accept_timer(struct tpool *tp, int wait_ms, uint64_t now);

/* thread.c, with tp->mu held. */
void tp_set_state_locked(struct tpool *tp);
#endif
