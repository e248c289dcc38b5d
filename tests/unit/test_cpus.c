/* Unit tests of supervisor/cpus.c: usable CPUs are the smaller of the
 * affinity's count and the quota's CPUs (issue 10 gap b). */
#include <sched.h>
#include <unistd.h>

#include "check.h"
#include "supervisor/cpus.h"

static void usable_is_the_smaller(void)
{
	CHECK(cpus_usable(2.0, 1) == 1.0); /* taskset -c 0 on 2 CPUs */
	CHECK(cpus_usable(0.2, 1) == 0.2); /* a quota under the one CPU */
	CHECK(cpus_usable(2.0, 0) == 2.0); /* affinity unknown */
	CHECK(cpus_usable(1.5, 4) == 1.5);
	CHECK(cpus_usable(0, 3) == 3.0); /* no figure from the quota */
}

static void affinity_of_this_process(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
	unsigned mine = (unsigned)CPU_COUNT(&set);
	CHECK(cpus_affinity_union(NULL, 0) == mine);
	pid_t self = getpid();
	pid_t two[2] = {self, 0x7ffffff0}; /* the second is no process: skipped */
	CHECK(cpus_affinity_union(two, 2) == mine);
	pid_t none[1] = {0x7ffffff0};
	CHECK(cpus_affinity_union(none, 1) == 0);
	struct host_view h = {.online_cpus = 64, .effective_cpus = 64};
	cpus_host_update(&h, &self, 1);
	CHECK(h.affinity_cpus == mine && h.effective_cpus == (double)mine);
}

int main(void)
{
	RUN(usable_is_the_smaller);
	RUN(affinity_of_this_process);
	return check_summary();
}
