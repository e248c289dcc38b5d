/* File descriptors of the master and its workers.  RLIMIT_NOFILE is per
 * process and inherited across fork, so the figure that matters is what one
 * process needs: a thread or event worker holds up to worker_connections
 * client sockets; the master holds, at a graceful stop, every connection it
 * takes from the listen queues (up to backlog per listener) plus a few fds
 * per worker.  The soft limit is raised only as far as that (not to the hard
 * limit, which can be huge: an app calling select() breaks on an fd above
 * FD_SETSIZE, the reason systemd leaves the soft limit at 1024). */
#include "supervisor/fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "supervisor/ctlsrv.h"
#include "supervisor/sample.h"

#define FD_MARGIN 64 /* stdio, logs, epoll/eventfd, libev, the app's own files */
#define FDS_PER_WORKER 4 /* the master's side of a worker: hand-off channel, pidfd, /proc reads */

struct fdlimit_need fdlimit_need(const struct drover_conf *c, size_t nlisteners)
{
	struct fdlimit_need n;
	unsigned long long conns =
		c->worker_class == WORKER_SYNC ? 1 : (unsigned long long)c->worker_connections;
	unsigned long long workers = (unsigned long long)c->workers;
	if (c->autoscale) /* the ceiling, 0 meaning 4 x workers as autoscale.c reads it */
		workers = c->max_workers > 0 ? (unsigned long long)c->max_workers : 4 * workers;
	/* a reload runs old and new workers side by side */
	workers *= 2;
	n.worker = conns + nlisteners + FD_MARGIN;
	n.master = nlisteners * (unsigned long long)c->backlog + workers * FDS_PER_WORKER +
		   2 * CTL_MAX_CLIENTS + nlisteners + FD_MARGIN;
	n.want = n.worker > n.master ? n.worker : n.master;
	return n;
}

int fdlimit_raise(unsigned long long want, struct fdlimit_result *r)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	r->soft_before = r->soft = rl.rlim_cur;
	r->hard = rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t to = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
		if (to > rl.rlim_cur) {
			rl.rlim_cur = to;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				return -errno;
			r->soft = to;
		}
	}
	return r->soft != RLIM_INFINITY && r->soft < want ? -ERANGE : 0;
}

void fdlimit_prometheus(const struct sampler *s, struct mbuf *b)
{
	mbuf_printf(b, "# HELP drover_accept_errors_total accept() failures of the worker by errno "
		       "(it pauses accepting after each).\n"
		       "# TYPE drover_accept_errors_total counter\n");
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		const struct worker_view *v = &s->w[i];
		for (unsigned k = 0; sample_live(v) && k < SB_AE_KINDS; k++)
			mbuf_printf(b, "drover_accept_errors_total{worker=\"%u\",pid=\"%d\","
				       "errno=\"%s\"} %llu\n", v->no, (int)v->p.pid, sb_accept_err_name(k),
				    (unsigned long long)v->accept_errors[k]);
	}
	static const char *const srv[CTLSRV_KINDS] = {"control", "metrics"};
	mbuf_printf(b, "# HELP drover_master_accept_errors_total accept() failures of the master's "
		       "control socket and metrics listener by errno.\n"
		       "# TYPE drover_master_accept_errors_total counter\n");
	for (unsigned j = 0; j < CTLSRV_KINDS; j++)
		for (unsigned k = 0; k < SB_AE_KINDS; k++)
			mbuf_printf(b, "drover_master_accept_errors_total{server=\"%s\","
				       "errno=\"%s\"} %llu\n", srv[j], sb_accept_err_name(k),
				    (unsigned long long)s->master.accept_errors[j][k]);
}
