/* What event.c (the worker loop: accept, timeouts, drain) and event_conn.c
 * (one non-blocking connection: read, parse, app, write queue, close) share.
 * Timeouts live in per-kind lists, each sorted by its start time because a
 * connection is always appended "now": expiry is O(1) per connection. */
#ifndef DROVER_EVENT_PRIV_H
#define DROVER_EVENT_PRIV_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "workers/http/http_conn.h"
#include "workers/worker_priv.h"

/* What a connection is waiting for; each kind has its own time limit. */
enum ec_wait {
	EC_WAIT_NONE = -1, /* in the app, or closed */
	EC_WAIT_HEAD = 0, /* a request head: header_timeout from its first byte */
	EC_WAIT_IDLE, /* keep-alive, nothing buffered: keepalive */
	EC_WAIT_BODY, /* body bytes: read_timeout since the last ones */
	EC_WAIT_WRITE, /* the client to read our output: send_timeout per progress */
	EC_WAIT_LINGER, /* the client's FIN after ours: EV_LINGER_S */
	EC_NWAITS
};

struct econn;
struct ec_list {
	struct econn *head, *tail;
};

struct ev_worker {
	struct worker_rt *rt;
	struct ev_loop *loop;
	int epfd; /* the wait set: listen sockets (EPOLLEXCLUSIVE) + libev's fd */
	bool listening; /* listen sockets are in epfd */
	uint32_t level; /* enum sb_accept published in slot->listening: FREE or NONE */
	/* Deferring to a worker with fewer connections (level FREE, not
	 * watching): when to judge the fair share again, the wait between
	 * judgements (ms, backing off while nothing moves), and the pool's
	 * accept count at the last one. */
	uint64_t fair_check_ns, pool_accepted;
	unsigned fair_wait_ms;
	bool draining;
	bool invoked; /* the current libev pass ran callbacks */
	bool unsettled; /* libev may hold watcher changes not yet in its epoll set */
	bool chan_shut; /* end of the drain: the master hands over no more */
	uint64_t drain_deadline_ns;
	uint64_t now_ns; /* taken after each wait: the loop's clock */
	uint64_t next_tick_ns, paused_until_ns;
	unsigned nconns, cap;
	unsigned inflight;
	double limit_s[EC_NWAITS];
	struct ec_list waits[EC_NWAITS];
};

struct econn {
	struct http_conn c;
	struct ev_worker *w;
	ev_io io;
	struct http_buf out; /* response bytes not yet on the wire */
	size_t out_off;
	struct econn *prev, *next; /* in w->waits[wait] */
	enum ec_wait wait;
	uint64_t since_ns; /* start of the current wait */
	bool in_body; /* head parsed, decoding the body into c->prebody */
	bool head_started; /* bytes of the next head arrived */
	bool closing; /* answer what is queued, then close */
	bool peer_eof;
	bool counted; /* a request of this connection is in w->inflight */
	bool sent_continue; /* 100 Continue queued for the current request */
	bool lingering; /* our FIN is out: only read and discard */
};

#define EV_LINGER_S 2.0

/* event_conn.c */
struct econn *econn_new(struct ev_worker *w, int fd, const struct worker_listener *l);
/* Its wait expired (kind given by c->wait): close it the right way. */
void econn_timeout(struct econn *ec);
void econn_destroy(struct econn *ec);

/* event.c: move ec to the tail of the list of its new wait, since now. */
void ev_worker_wait(struct econn *ec, enum ec_wait wait, uint64_t now);
#endif
