/* The master's measurement parsers: pure functions over the text of /proc and
 * cgroup files (no I/O, no clock, no logging), the rate helpers that compare
 * two samples, and the one file-reading helper every reader shares.
 * Parsers return 0 or -EINVAL and never read past text + len. */
#ifndef DROVER_SAMPLE_PARSE_H
#define DROVER_SAMPLE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every parser takes the bytes as read from the kernel (NUL termination not
 * needed).  The kernel ends every line with '\n', so a final line without one
 * is taken as cut short and ignored: a truncated read never yields a partial
 * number, only a missing field (-EINVAL if the field is required). */

/* /proc/PID/stat and /proc/PID/task/TID/stat. comm is found from the LAST ')'
 * since it may hold spaces, ')' and even '\n'. */
struct proc_stat {
	int pid;
	char comm[64]; /* NUL-terminated, cut to fit */
	char state; /* R S D Z T t X I ... */
	uint64_t utime, stime; /* clock ticks (sysconf(_SC_CLK_TCK)) */
	long num_threads;
	uint64_t starttime; /* clock ticks after boot: tells a reused pid apart */
	uint64_t vsize; /* bytes */
	uint64_t rss; /* pages */
	int processor; /* CPU last run on */
};
int parse_proc_stat(const char *text, size_t len, struct proc_stat *out);

/* /proc/PID/status and /proc/PID/task/TID/status. Zombies and kernel threads
 * have no Vm* lines: has_vm is false and the kB fields are 0.  The switch
 * counts are per task: /proc/PID/status gives the main thread's alone. */
struct proc_status {
	char state; /* first letter of "State:" */
	uint64_t vcsw, ivcsw; /* voluntary_ / nonvoluntary_ctxt_switches */
	unsigned threads;
	bool has_vm;
	uint64_t vm_rss_kb, vm_hwm_kb;
};
int parse_proc_status(const char *text, size_t len, struct proc_status *out);

/* /proc/PID/smaps_rollup (kB).  Empty for a zombie: -EINVAL. */
struct smaps_rollup {
	uint64_t rss_kb, pss_kb, private_dirty_kb, anonymous_kb, swap_kb;
};
int parse_smaps_rollup(const char *text, size_t len, struct smaps_rollup *out);

/* /proc/PID/schedstat and /proc/PID/task/TID/schedstat. */
struct schedstat {
	uint64_t cpu_ns; /* time on CPU */
	uint64_t wait_ns; /* time runnable but waiting in a run queue */
	uint64_t timeslices; /* times scheduled in */
};
int parse_schedstat(const char *text, size_t len, struct schedstat *out);

/* /proc/loadavg: "0.05 0.12 0.07 1/86 4994". */
struct loadavg {
	double load1, load5, load15;
	unsigned runnable, total; /* scheduling entities now runnable / existing */
};
int parse_loadavg(const char *text, size_t len, struct loadavg *out);

/* /proc/vmstat: the swap counters "pswpin N" and "pswpout N" (pages since
 * boot).  -EINVAL if either is missing (a kernel without swap support). */
struct vmstat_swap {
	uint64_t pswpin, pswpout;
};
int parse_vmstat_swap(const char *text, size_t len, struct vmstat_swap *out);

/* /proc/pressure/{cpu,io,memory} (and cgroup v2 *.pressure). */
struct psi_line {
	double avg10, avg60, avg300; /* percent */
	uint64_t total_us;
};
struct psi {
	bool present; /* false: no PSI on this kernel (not an error) */
	bool has_full; /* cpu has no "full" line before Linux 5.13 */
	struct psi_line some, full;
};
/* Requires a "some" line; sets present = true. */
int parse_psi(const char *text, size_t len, struct psi *out);
/* Reads and parses path with the caller's buffer.  A missing file (ENOENT) or
 * PSI disabled at boot (EOPNOTSUPP) gives 0 with present = false. */
int sample_psi_load(const char *path, char *buf, size_t cap, struct psi *out);

/* CPU bandwidth limit. v2: cpu.max; v1: cpu.cfs_quota_us + cpu.cfs_period_us
 * (each v1 parser fills only its own field). */
#define CG_QUOTA_NONE (-1)
struct cg_cpu_max {
	int64_t quota_us; /* CG_QUOTA_NONE: no limit */
	uint64_t period_us;
};
int parse_cg2_cpu_max(const char *text, size_t len, struct cg_cpu_max *out);
int parse_cg1_cfs_quota(const char *text, size_t len, struct cg_cpu_max *out);
int parse_cg1_cfs_period(const char *text, size_t len, struct cg_cpu_max *out);
/* CPUs this group may use: quota / period, capped at online_cpus; no quota ->
 * online_cpus.  online_cpus 0 is taken as 1. */
double cg_effective_cpus(const struct cg_cpu_max *m, unsigned online_cpus);

/* cpu.stat, v1 and v2 in one shape (times in microseconds).  v2 has usage
 * always and throttling only when the cpu controller is enabled for the
 * group; v1 has throttling only (usage lives in cpuacct.usage). */
struct cg_cpu_stat {
	bool has_usage, has_throttling;
	uint64_t usage_us;
	uint64_t nr_periods, nr_throttled;
	uint64_t throttled_us; /* v1 throttled_time is ns: divided by 1000 */
};
int parse_cg2_cpu_stat(const char *text, size_t len, struct cg_cpu_stat *out);
int parse_cg1_cpu_stat(const char *text, size_t len, struct cg_cpu_stat *out);

/* /proc/self/cgroup: the v2 line "0::/path" and the v1 line whose controller
 * list holds "cpu" (e.g. "4:cpu,cpuacct:/path"). -EINVAL if neither is
 * there or a path does not fit. */
#define CG_PATH_MAX 1024
struct cg_self {
	bool has_v2, has_v1_cpu;
	char v2_path[CG_PATH_MAX];
	char v1_cpu_path[CG_PATH_MAX];
	char v1_cpu_controllers[64]; /* "cpu,cpuacct": the v1 mount directory's name */
};
int parse_self_cgroup(const char *text, size_t len, struct cg_self *out);
/* The directory holding this group's cpu.* files under root (normally
 * "/sys/fs/cgroup"): v1 if a v1 cpu controller is mounted (then the cpu
 * controller cannot be on v2), else v2.  Returns 1 or 2 (the version), or
 * -EINVAL / -ENAMETOOLONG. */
int cg_self_cpu_dir(const struct cg_self *s, const char *root, char *buf, size_t cap);

/* ---- rates: two samples of the same thing, b taken after a ---- */

/* after - before, or 0 if the counter went backwards (reset, reused pid or
 * tid, a thread that vanished): a rate is never negative. */
uint64_t sample_delta(uint64_t before, uint64_t after);
/* Delta per second; 0 if elapsed_s <= 0. */
double sample_rate(uint64_t before, uint64_t after, double elapsed_s);
/* Delta per request; 0 if there were no requests. */
double sample_per_request(uint64_t before, uint64_t after, uint64_t requests);

/* One read of one worker.  stat's utime/stime cover every thread, but the
 * status switch counts and schedstat of /proc/PID are the main thread's only:
 * for a multi-threaded worker use sample_threads_aggregate() as well. */
struct proc_sample {
	struct proc_stat stat;
	struct proc_status status;
	struct schedstat sched;
};
struct proc_rates {
	double cpu; /* CPU seconds per second from utime + stime (1.0 = a core) */
	double oncpu; /* the same from schedstat (ns resolution) */
	double runq_wait; /* seconds waiting for a CPU per second */
	double timeslices; /* per second */
	double vcsw, ivcsw; /* context switches per second */
};
/* -ESRCH (out zeroed) if a and b are not the same process (pid or starttime
 * differ).  clk_tck is sysconf(_SC_CLK_TCK), passed in to keep this pure. */
int sample_proc_rates(const struct proc_sample *a, const struct proc_sample *b,
		      double elapsed_s, long clk_tck, struct proc_rates *out);
struct proc_per_request {
	double cpu_ms, runq_wait_ms, vcsw, ivcsw;
};
/* Per request between a and b; all 0 if requests is 0 or -ESRCH as above. */
int sample_proc_per_request(const struct proc_sample *a, const struct proc_sample *b,
			    uint64_t requests, struct proc_per_request *out);

/* cgroup CPU between two cpu.stat reads. */
struct cg_rates {
	double usage_cpus; /* CPUs' worth of time used */
	double throttled_frac; /* share of periods that were throttled, 0..1 */
	double throttled_per_s; /* seconds throttled per second */
};
void sample_cg_rates(const struct cg_cpu_stat *a, const struct cg_cpu_stat *b,
		     double elapsed_s, struct cg_rates *out);

/* Per-thread aggregation: threads appear and vanish between two reads of
 * /proc/PID/task, so deltas are summed only over tids present in both. */
struct task_sample {
	int tid;
	struct proc_status status;
	struct schedstat sched; /* zeros if not read */
};
struct thread_agg {
	uint64_t vcsw, ivcsw; /* summed deltas over threads in both reads */
	uint64_t cpu_ns, wait_ns;
	unsigned n_both, n_new, n_gone;
	int busiest_tid; /* most switches (vcsw + ivcsw) in the interval; 0: none */
	uint64_t busiest_csw;
};
/* Arrays sorted by tid (the order readdir gives on /proc) are matched in
 * linear time; unsorted ones still work, in quadratic time. */
void sample_threads_aggregate(const struct task_sample *before, size_t nb,
			      const struct task_sample *after, size_t na,
			      struct thread_agg *out);

/* ---- I/O: the one helper shared by the thin readers ---- */

/* Read the whole of path into buf (at most cap - 1 bytes, NUL-terminated) and
 * set *len.  Returns 0 or -errno: -ENOENT / -ESRCH are normal for a thread or
 * worker that has gone; -EFBIG if the file did not fit (buf holds the start). */
int sample_read_file(const char *path, char *buf, size_t cap, size_t *len);

#endif
