/* The graceful stop's hand-off: at TERM the master empties the listen queues
 * itself (a sync worker busy in the app cannot), stops listening so new
 * connections are refused rather than reset, and passes each queued
 * connection to a live worker over that worker's channel (a SOCK_SEQPACKET
 * socketpair made at spawn, fds sent with SCM_RIGHTS). */
#ifndef DROVER_HANDOFF_H
#define DROVER_HANDOFF_H

struct arbiter;
struct worker_rec;

/* Before fork: a new channel.  fds[0] is the master's end (>= 3, so that 0
 * can mean "none" in a zeroed worker record), fds[1] the worker's.  0, or
 * -errno with fds {0, -1} (the worker then runs without a channel). */
int handoff_pair(int fds[2]);
/* In the forked child, first thing: close the master ends of every other
 * worker's channel (inherited across fork). */
void handoff_child_close(struct arbiter *ar);
/* The worker is gone (reaped): close its channel. */
void handoff_close(struct worker_rec *w);
/* Graceful stop of the whole master: take the queued connections, shut the
 * listen sockets (Linux: TCP connects then get RST = ECONNREFUSED, unix
 * connects ECONNREFUSED, workers' accept EINVAL), and hand the connections to
 * live workers, idle ones first; with none left, answer 503 and close.
 * Call before the workers are told to drain.  Never blocks. */
void handoff_stop_listening(struct arbiter *ar);
#endif
