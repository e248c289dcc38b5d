/* Fuzz target: every parser of kernel text the master reads (/proc/PID/stat,
 * status, smaps_rollup, schedstat, /proc/loadavg, /proc/vmstat, PSI, cgroup
 * v1 and v2 cpu files, /proc/self/cgroup), each over the same bytes.  The
 * bytes are an exact-size heap copy without a NUL, as the parsers promise
 * never to read past text + len.  Checks: no memory error or UB; strings
 * they fill are NUL-terminated. */
#include <errno.h>

#include "fuzz.h"
#include "supervisor/sample_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = (const char *)data;
	struct proc_stat st;
	if (parse_proc_stat(t, size, &st) == 0)
		FUZZ_ASSERT(memchr(st.comm, '\0', sizeof(st.comm)) != NULL);
	struct proc_status ps;
	parse_proc_status(t, size, &ps);
	struct smaps_rollup sr;
	parse_smaps_rollup(t, size, &sr);
	struct schedstat ss;
	parse_schedstat(t, size, &ss);
	struct loadavg la;
	parse_loadavg(t, size, &la);
	struct vmstat_swap vs;
	parse_vmstat_swap(t, size, &vs);
	struct psi psi;
	parse_psi(t, size, &psi);
	struct cg_cpu_max cm = {0, 0};
	parse_cg2_cpu_max(t, size, &cm);
	parse_cg1_cfs_quota(t, size, &cm);
	parse_cg1_cfs_period(t, size, &cm);
	(void)cg_effective_cpus(&cm, 2);
	struct cg_cpu_stat cs;
	parse_cg2_cpu_stat(t, size, &cs);
	parse_cg1_cpu_stat(t, size, &cs);
	static struct cg_self self;
	if (parse_self_cgroup(t, size, &self) == 0) {
		FUZZ_ASSERT(memchr(self.v2_path, '\0', sizeof(self.v2_path)) != NULL);
		FUZZ_ASSERT(memchr(self.v1_cpu_path, '\0', sizeof(self.v1_cpu_path)) != NULL);
		char dir[256];
		int v = cg_self_cpu_dir(&self, "/sys/fs/cgroup", dir, sizeof(dir));
		FUZZ_ASSERT(v == 1 || v == 2 || v == -EINVAL || v == -ENAMETOOLONG);
	}
	return 0;
}
