/* Thread-group totals from the kernel's taskstats netlink interface
 * (Documentation/accounting/taskstats.rst): one TASKSTATS_CMD_GET with
 * TASKSTATS_CMD_ATTR_TGID returns the switch counts and CPU time of every
 * thread of a worker in one message, where /proc needs two files per thread.
 * The kernel answers only a caller with CAP_NET_ADMIN (GENL_ADMIN_PERM);
 * without it, or without CONFIG_TASKSTATS, the sampler reads /proc. */
#ifndef DROVER_TASKSTATS_H
#define DROVER_TASKSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ts_totals {
	uint64_t nvcsw, nivcsw; /* voluntary / involuntary switches, all threads */
	uint64_t cpu_ns; /* user + system time of all threads, ns (us resolution) */
	/* Delay accounting (sysctl kernel.task_delayacct=1 or the delayacct boot
	 * flag): on-CPU ns (sum_exec_runtime) and run-queue wait ns.  The kernel
	 * leaves them 0 when it is off, so has_delay is set from cpu_count. */
	bool has_delay;
	uint64_t run_ns, delay_ns, cpu_count;
};

/* Pure: the thread-group totals in one genetlink reply of len bytes, for the
 * group tgid.  0, -EINVAL (not a TASKSTATS reply for tgid, or cut short), or
 * the kernel's -errno from an NLMSG_ERROR reply (-EPERM, -ESRCH ...). */
int taskstats_parse_reply(const void *msg, size_t len, uint16_t family, pid_t tgid,
			  struct ts_totals *out);
/* Pure: the family id in a CTRL_CMD_GETFAMILY reply; 0 or -errno as above. */
int taskstats_parse_family(const void *msg, size_t len, uint16_t *family);

struct taskstats_sock {
	int fd; /* -1: closed */
	uint16_t family;
	uint32_t seq;
};
/* Opens a non-blocking NETLINK_GENERIC socket and looks up the TASKSTATS
 * family.  0 or -errno (-ENOENT: no taskstats in this kernel). */
int taskstats_open(struct taskstats_sock *t);
/* One thread group's totals.  Never blocks: the kernel answers a genetlink
 * request inside sendmsg(), so the reply is queued when it returns (-EAGAIN
 * if not).  0 or -errno: -EPERM without CAP_NET_ADMIN, -ESRCH if gone. */
int taskstats_tgid(struct taskstats_sock *t, pid_t tgid, struct ts_totals *out);
void taskstats_close(struct taskstats_sock *t);
#endif
