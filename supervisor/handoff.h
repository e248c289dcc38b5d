/* The graceful stop's hand-off, as socket operations on plain data: at TERM
 * the master empties the listen queues itself (a sync worker busy in the app
 * cannot), stops listening so new connections are refused rather than reset,
 * and passes each queued connection to a live worker over that worker's
 * channel (a SOCK_SEQPACKET socketpair made at spawn, fds sent with
 * SCM_RIGHTS).  Which worker gets which connection is pool.c's choice. */
#ifndef DROVER_HANDOFF_H
#define DROVER_HANDOFF_H

#include <stddef.h>

#include "supervisor/listen.h"

/* A connection taken from a listen queue. */
struct handoff_conn {
	int fd;
	int listen_fd; /* the listener it came from (the worker knows it by this fd) */
};

/* Before fork: a new channel.  fds[0] is the master's end (>= 3, so that 0
 * can mean "none" in a zeroed worker record), fds[1] the worker's.  0, or
 * -errno with fds {0, -1} (the worker then runs without a channel). */
int handoff_pair(int fds[2]);
/* Take the connections every listener of ls holds queued, then shut the
 * listeners (Linux: a TCP connect is then refused with RST = ECONNREFUSED, a
 * unix connect gets ECONNREFUSED, workers blocked in accept get EINVAL).
 * *out: a malloc'ed array (free it), NULL when nothing was queued.  Returns
 * the count; on ENOMEM the listeners are still shut and the queues reset
 * (logged).  Never blocks: the listeners are non-blocking.  Listeners
 * shared with systemd or another master (listen_shared) are left alone,
 * neither emptied nor shut. */
size_t handoff_take_queues(const struct listeners *ls, int backlog, struct handoff_conn **out);
/* Send c to the worker on chan without waiting.  0, or -errno (EAGAIN: the
 * channel is full; EPIPE/ECONNREFUSED: the worker shut it or exited).  The
 * caller still owns (and closes) c->fd. */
int handoff_send(int chan, const struct handoff_conn *c);
/* No worker can take it: answer 503 with Connection: close and close. */
void handoff_refuse(int fd);
#endif
