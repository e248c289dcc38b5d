/* Usable CPUs (see cpus.h). */
#include "supervisor/cpus.h"

#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>

/* Large enough for any machine this runs on; a bigger host makes
 * sched_getaffinity fail with EINVAL and the mask counts as unknown. */
#define CPUS_MAX 4096

unsigned cpus_affinity_union(const pid_t *pids, size_t n)
{
	size_t sz = CPU_ALLOC_SIZE(CPUS_MAX);
	cpu_set_t *all = CPU_ALLOC(CPUS_MAX), *one = CPU_ALLOC(CPUS_MAX);
	unsigned count = 0;
	if (!all || !one)
		goto out;
	CPU_ZERO_S(sz, all);
	bool any = false;
	for (size_t i = 0; i < (n ? n : 1); i++) {
		CPU_ZERO_S(sz, one);
		if (sched_getaffinity(n ? pids[i] : 0, sz, one) < 0)
			continue; /* gone (ESRCH) or a huge host (EINVAL) */
		CPU_OR_S(sz, all, all, one);
		any = true;
	}
	count = any ? (unsigned)CPU_COUNT_S(sz, all) : 0;
out:
	CPU_FREE(all);
	CPU_FREE(one);
	return count;
}

double cpus_usable(double quota_cpus, unsigned affinity_cpus)
{
	if (affinity_cpus && (!(quota_cpus > 0) || (double)affinity_cpus < quota_cpus))
		return (double)affinity_cpus;
	return quota_cpus;
}

void cpus_host_update(struct host_view *h, const pid_t *pids, size_t n)
{
	h->affinity_cpus = cpus_affinity_union(pids, n);
	h->effective_cpus = cpus_usable(h->effective_cpus, h->affinity_cpus);
}
