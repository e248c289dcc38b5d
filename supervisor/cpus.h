/* Usable CPUs: what the pool can run on at once, the smaller of its CPU
 * affinity (sched_getaffinity(2): `taskset -c 0` leaves one CPU whatever the
 * host has) and its cgroup CPU quota (cpu.max / cfs_quota_us over the
 * period).  The decisions (doctor, autoscale) compare rates with this. */
#ifndef DROVER_CPUS_H
#define DROVER_CPUS_H

#include <stddef.h>
#include <sys/types.h>

#include "supervisor/sample.h"

/* CPUs in the union of the affinity masks of pids (pid 0: the caller);
 * processes gone in between are skipped.  0 if none could be read. */
unsigned cpus_affinity_union(const pid_t *pids, size_t n);
/* Pure: the smaller of the quota's CPUs (cg_effective_cpus, already capped
 * at the online CPUs) and the affinity's CPU count (0: unknown, ignored). */
double cpus_usable(double quota_cpus, unsigned affinity_cpus);
/* Set h's affinity and usable CPUs from the processes pids (the workers;
 * none: the caller's own mask, which the workers it forks inherit).  Call
 * after sample_read_host, which sets the quota's figure. */
void cpus_host_update(struct host_view *h, const pid_t *pids, size_t n);
#endif
