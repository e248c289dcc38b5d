/* Unit tests for supervisor/sample_parse: every parser on real text captured
 * from /proc and /sys/fs/cgroup (tests/unit/fixtures/sample/, see README
 * there), on hand-made variants, on garbage and on every truncated prefix
 * (copied into an exact-size buffer so valgrind sees any overread). */
#include "supervisor/sample_parse.h"
#include "check.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define FIXTURES SOURCE_ROOT "/tests/unit/fixtures/sample/"
#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-9)

static char fx[8192];
static size_t fx_len;

/* Load a fixture into fx and give its length (written as parse(fx,
 * fixture(name), ...) so the load happens before the call reads fx); a failed
 * load fails the test that asked for it. */
static size_t fixture(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s%s", FIXTURES, name);
	if (sample_read_file(path, fx, sizeof(fx), &fx_len) < 0) {
		printf("#   cannot read fixture %s\n", path);
		check_failed_ = 1;
		fx_len = 0;
	}
	return fx_len;
}

/* Parse a string literal (its length excludes the NUL, as a read gives). */
#define PARSE(fn, s, out) fn((s), sizeof(s) - 1, (out))

/* ---- every prefix of a fixture: 0 or -EINVAL, no overread ---- */

typedef int (*parse_fn)(const char *, size_t, void *);
typedef bool (*same_fn)(const void *full, const void *part);

#define WRAP(fn, type)                                                                   \
	static int w_##fn(const char *t, size_t n, void *o)                              \
	{                                                                                \
		return fn(t, n, (type *)o);                                              \
	}
WRAP(parse_proc_stat, struct proc_stat)
WRAP(parse_proc_status, struct proc_status)
WRAP(parse_smaps_rollup, struct smaps_rollup)
WRAP(parse_schedstat, struct schedstat)
WRAP(parse_loadavg, struct loadavg)
WRAP(parse_psi, struct psi)
WRAP(parse_cg2_cpu_stat, struct cg_cpu_stat)
WRAP(parse_cg1_cpu_stat, struct cg_cpu_stat)
WRAP(parse_self_cgroup, struct cg_self)

/* Returns how many prefixes parsed; each that did must agree with the whole
 * file on the fields `same` compares. */
static size_t sweep(const char *name, parse_fn fn, same_fn same, size_t outsz)
{
	void *full = calloc(1, outsz), *part = calloc(1, outsz);
	size_t ok = 0;

	fixture(name);
	CHECK(fn(fx, fx_len, full) == 0);
	for (size_t k = 0; k <= fx_len; k++) {
		char *copy = malloc(k ? k : 1);
		int r;

		memcpy(copy, fx, k);
		r = fn(copy, k, part);
		CHECK(r == 0 || r == -EINVAL);
		if (r == 0) {
			ok++;
			if (!same(full, part)) {
				printf("#   %s: prefix %zu differs\n", name, k);
				check_failed_ = 1;
			}
		}
		free(copy);
	}
	free(full);
	free(part);
	return ok;
}

static bool same_stat(const void *a, const void *b)
{
	const struct proc_stat *x = a, *y = b;

	return x->pid == y->pid && x->utime == y->utime && x->processor == y->processor &&
	       strcmp(x->comm, y->comm) == 0;
}

static bool same_status(const void *a, const void *b)
{
	const struct proc_status *x = a, *y = b;

	return x->vcsw == y->vcsw && x->ivcsw == y->ivcsw && x->threads == y->threads &&
	       x->state == y->state;
}

static bool same_smaps(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct smaps_rollup)) == 0;
}

static bool same_schedstat(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct schedstat)) == 0;
}

static bool same_loadavg(const void *a, const void *b)
{
	const struct loadavg *x = a, *y = b;

	return x->total == y->total && NEAR(x->load15, y->load15);
}

static bool same_psi_some(const void *a, const void *b)
{
	const struct psi *x = a, *y = b;

	return x->some.total_us == y->some.total_us && NEAR(x->some.avg300, y->some.avg300);
}

static bool same_cg_stat(const void *a, const void *b)
{
	const struct cg_cpu_stat *x = a, *y = b;

	/* A prefix cut before the throttling lines reports none, not zeros. */
	return x->usage_us == y->usage_us &&
	       (!y->has_throttling || x->nr_periods == y->nr_periods);
}

static bool same_cg_self(const void *a, const void *b)
{
	const struct cg_self *x = a, *y = b;

	/* A prefix may stop before the v1 line; what it found must match. */
	return (!y->has_v2 || strcmp(x->v2_path, y->v2_path) == 0) &&
	       (!y->has_v1_cpu || strcmp(x->v1_cpu_path, y->v1_cpu_path) == 0);
}

static void test_truncated_prefixes(void)
{
	/* stat is one line: only the whole file parses. */
	CHECK(sweep("proc_stat_python", w_parse_proc_stat, same_stat,
		    sizeof(struct proc_stat)) == 1);
	CHECK(sweep("proc_stat_comm_newline", w_parse_proc_stat, same_stat,
		    sizeof(struct proc_stat)) == 1);
	CHECK(sweep("proc_status_python", w_parse_proc_status, same_status,
		    sizeof(struct proc_status)) >= 1);
	CHECK(sweep("task_status_1", w_parse_proc_status, same_status,
		    sizeof(struct proc_status)) >= 1);
	CHECK(sweep("proc_smaps_rollup_python", w_parse_smaps_rollup, same_smaps,
		    sizeof(struct smaps_rollup)) >= 1);
	CHECK(sweep("task_schedstat_1", w_parse_schedstat, same_schedstat,
		    sizeof(struct schedstat)) == 1);
	CHECK(sweep("loadavg", w_parse_loadavg, same_loadavg, sizeof(struct loadavg)) == 1);
	CHECK(sweep("pressure_io", w_parse_psi, same_psi_some, sizeof(struct psi)) >= 2);
	CHECK(sweep("cgv2_cpu_stat_throttled", w_parse_cg2_cpu_stat, same_cg_stat,
		    sizeof(struct cg_cpu_stat)) >= 1);
	CHECK(sweep("cgv1_cpu_stat_throttled", w_parse_cg1_cpu_stat, same_cg_stat,
		    sizeof(struct cg_cpu_stat)) >= 1);
	CHECK(sweep("self_cgroup_hybrid", w_parse_self_cgroup, same_cg_self,
		    sizeof(struct cg_self)) >= 1);
}

/* ---- sample_read_file ---- */

static void test_read_file(void)
{
	char buf[64], big[4096];
	size_t len = 99;

	CHECK(sample_read_file(FIXTURES "loadavg", buf, sizeof(buf), &len) == 0);
	CHECK(len == 25 && buf[len] == '\0' && buf[len - 1] == '\n');
	CHECK(sample_read_file(FIXTURES "no_such_file", buf, sizeof(buf), &len) == -ENOENT);
	CHECK(len == 0);
	CHECK(sample_read_file(FIXTURES "proc_status_python", buf, sizeof(buf), &len) ==
	      -EFBIG);
	CHECK(len == sizeof(buf) - 1 && buf[len] == '\0');
	CHECK(sample_read_file(FIXTURES "loadavg", buf, 0, &len) == -EINVAL);
	/* Exactly fitting (25 bytes + NUL) is not "too big". */
	CHECK(sample_read_file(FIXTURES "loadavg", buf, 26, &len) == 0 && len == 25);
	CHECK(sample_read_file(FIXTURES "loadavg", buf, 25, &len) == -EFBIG);
	/* /proc files report size 0: the loop must read until EOF. */
	CHECK(sample_read_file("/proc/self/status", big, sizeof(big), &len) == 0);
	CHECK(len > 100);
}

/* ---- /proc/PID/stat ---- */

static void test_stat_fixtures(void)
{
	struct proc_stat s;

	CHECK(parse_proc_stat(fx, fixture("proc_stat_python"), &s) == 0);
	CHECK(s.pid == 5186 && s.state == 'R');
	CHECK_STR(s.comm, "python3");
	CHECK(s.utime == 47 && s.stime == 14 && s.num_threads == 4);
	CHECK(s.starttime == 31378 && s.vsize == 243515392ull && s.rss == 3380);
	CHECK(s.processor == 1);

	CHECK(parse_proc_stat(fx, fixture("proc_stat_cat"), &s) == 0);
	CHECK(s.pid == 5230 && s.num_threads == 1 && s.rss == 405 && s.utime == 0);
	CHECK_STR(s.comm, "cat");

	CHECK(parse_proc_stat(fx, fixture("proc_stat_comm_parens"), &s) == 0);
	CHECK_STR(s.comm, "my (weird) ) prog");
	CHECK(s.state == 'R' && s.utime == 47 && s.stime == 14 && s.processor == 1);

	CHECK(parse_proc_stat(fx, fixture("proc_stat_comm_newline"), &s) == 0);
	CHECK_STR(s.comm, "a\nb");
	CHECK(s.pid == 77 && s.starttime == 31440);

	CHECK(parse_proc_stat(fx, fixture("proc_stat_truncated"), &s) == -EINVAL);
	CHECK(s.pid == 0 && s.utime == 0); /* nothing half-filled on failure */
}

static void test_stat_live(void)
{
	char buf[1024];
	size_t len;
	struct proc_stat s;

	CHECK(sample_read_file("/proc/self/stat", buf, sizeof(buf), &len) == 0);
	CHECK(parse_proc_stat(buf, len, &s) == 0);
	CHECK(s.pid == getpid() && s.state == 'R' && s.num_threads == 1);
}

static void test_stat_garbage(void)
{
	struct proc_stat s;
	const char *tail = " R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 99 100 7 "
			   "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
	char line[512];

	CHECK(parse_proc_stat("", 0, &s) == -EINVAL);
	CHECK(parse_proc_stat(NULL, 0, &s) == -EINVAL);
	CHECK(PARSE(parse_proc_stat, "\n", &s) == -EINVAL);
	CHECK(PARSE(parse_proc_stat, "hello world\n", &s) == -EINVAL);
	CHECK(PARSE(parse_proc_stat, "12 (no close paren R 1 2 3\n", &s) == -EINVAL);
	CHECK(PARSE(parse_proc_stat, "12 (x) R 1 2 3\n", &s) == -EINVAL);
	CHECK(PARSE(parse_proc_stat, "99999999999 (x) R 1\n", &s) == -EINVAL);

	snprintf(line, sizeof(line), "42 (ok)%s", tail);
	CHECK(parse_proc_stat(line, strlen(line), &s) == 0);
	CHECK(s.utime == 5 && s.stime == 6 && s.rss == 7 && s.processor == 1);
	/* The same line with one field broken. */
	snprintf(line, sizeof(line), "42 (ok)%s", tail);
	memcpy(strstr(line, " 5 6 ") + 1, "x", 1);
	CHECK(parse_proc_stat(line, strlen(line), &s) == -EINVAL);
	snprintf(line, sizeof(line), "42 (ok)%s", tail);
	memcpy(strstr(line, " 5 6 ") + 1, "-", 1); /* "-" alone: no digits */
	CHECK(parse_proc_stat(line, strlen(line), &s) == -EINVAL);
	snprintf(line, sizeof(line), "42 (ok)%s", tail);
	memcpy(strstr(line, " 99 100 "), " -9", 3); /* negative starttime */
	CHECK(parse_proc_stat(line, strlen(line), &s) == -EINVAL);
	snprintf(line, sizeof(line), "42 (ok)%s", tail);
	line[strlen(line) - 1] = '\0'; /* no final newline: taken as cut */
	CHECK(parse_proc_stat(line, strlen(line), &s) == -EINVAL);
	CHECK(PARSE(parse_proc_stat, "42 (x) R 1 2 3 99999999999999999999999 5\n", &s) ==
	      -EINVAL);
}

/* ---- status ---- */

static void test_status_fixtures(void)
{
	struct proc_status st;

	CHECK(parse_proc_status(fx, fixture("proc_status_python"), &st) == 0);
	CHECK(st.state == 'R' && st.threads == 4 && st.vcsw == 33 && st.ivcsw == 11);
	CHECK(st.has_vm && st.vm_rss_kb == 13552 && st.vm_hwm_kb == 13552);

	CHECK(parse_proc_status(fx, fixture("proc_status_cat"), &st) == 0);
	CHECK(st.threads == 1 && st.vcsw == 0 && st.vm_rss_kb == 1604);

	CHECK(parse_proc_status(fx, fixture("task_status_1"), &st) == 0);
	CHECK(st.vcsw == 3531 && st.ivcsw == 241 && st.vm_hwm_kb == 13556);

	CHECK(parse_proc_status(fx, fixture("proc_status_zombie"), &st) == 0);
	CHECK(st.state == 'Z' && !st.has_vm && st.vm_rss_kb == 0 && st.vm_hwm_kb == 0);

	/* Cut before the ctxt_switches lines. */
	CHECK(parse_proc_status(fx, fixture("proc_status_truncated"), &st) == -EINVAL);
	CHECK(st.threads == 0);
}

static void test_status_garbage(void)
{
	struct proc_status st;

	CHECK(PARSE(parse_proc_status, "", &st) == -EINVAL);
	CHECK(PARSE(parse_proc_status, "just some text\nno colons\n", &st) == -EINVAL);
	CHECK(PARSE(parse_proc_status, "State:\tS (sleeping)\nThreads:\t2\n"
		    "voluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n",
		    &st) == 0);
	CHECK(st.state == 'S' && st.threads == 2 && st.vcsw == 7 && st.ivcsw == 3);
	CHECK(PARSE(parse_proc_status, "State:\tS (sleeping)\nThreads:\t2\n"
		    "voluntary_ctxt_switches:\tlots\nnonvoluntary_ctxt_switches:\t3\n",
		    &st) == -EINVAL);
	CHECK(PARSE(parse_proc_status, "State:\tS (sleeping)\nThreads:\t99999999999\n"
		    "voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t3\n",
		    &st) == -EINVAL);
	CHECK(PARSE(parse_proc_status, "State:\t\nThreads:\t2\n"
		    "voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t3\n",
		    &st) == -EINVAL);
	/* "12x" is not 12. */
	CHECK(PARSE(parse_proc_status, "State:\tS\nThreads:\t2\nVmRSS:\t12x kB\n"
		    "voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t3\n",
		    &st) == -EINVAL);
}

static void test_status_live(void)
{
	char buf[4096];
	size_t len;
	struct proc_status st;

	CHECK(sample_read_file("/proc/self/status", buf, sizeof(buf), &len) == 0);
	CHECK(parse_proc_status(buf, len, &st) == 0);
	CHECK(st.state == 'R' && st.threads == 1 && st.has_vm && st.vm_rss_kb > 0);
}

/* ---- smaps_rollup, schedstat, loadavg ---- */

static void test_smaps_rollup(void)
{
	struct smaps_rollup m;
	char buf[4096];
	size_t len;

	CHECK(parse_smaps_rollup(fx, fixture("proc_smaps_rollup_python"), &m) == 0);
	CHECK(m.rss_kb == 13552 && m.pss_kb == 12244 && m.private_dirty_kb == 6944);
	CHECK(m.anonymous_kb == 6944 && m.swap_kb == 0);
	CHECK(parse_smaps_rollup(fx, fixture("proc_smaps_rollup_truncated"), &m) ==
	      -EINVAL);
	CHECK(parse_smaps_rollup("", 0, &m) == -EINVAL); /* a zombie's is empty */
	/* SwapPss must not be taken for Swap, nor Pss_Dirty for Pss. */
	CHECK(PARSE(parse_smaps_rollup, "Rss: 10 kB\nPss_Dirty: 1 kB\nPss: 9 kB\n"
		    "Private_Dirty: 3 kB\nAnonymous: 4 kB\nSwapPss: 8 kB\nSwap: 5 kB\n",
		    &m) == 0);
	CHECK(m.pss_kb == 9 && m.swap_kb == 5);
	if (sample_read_file("/proc/self/smaps_rollup", buf, sizeof(buf), &len) == 0) {
		CHECK(parse_smaps_rollup(buf, len, &m) == 0);
		CHECK(m.rss_kb > 0 && m.pss_kb <= m.rss_kb);
	}
}

static void test_schedstat(void)
{
	struct schedstat s;

	CHECK(parse_schedstat(fx, fixture("task_schedstat_1"), &s) == 0);
	CHECK(s.cpu_ns == 216568017ull && s.wait_ns == 28263145ull && s.timeslices == 3779);
	CHECK(parse_schedstat(fx, fixture("proc_schedstat_python"), &s) == 0);
	CHECK(s.cpu_ns == 49251257ull && s.timeslices == 60);
	CHECK(parse_schedstat(fx, fixture("proc_schedstat_truncated"), &s) == -EINVAL);
	CHECK(PARSE(parse_schedstat, "1 2\n", &s) == -EINVAL);
	CHECK(PARSE(parse_schedstat, "1 2 x\n", &s) == -EINVAL);
	CHECK(PARSE(parse_schedstat, "1  2 3\n", &s) == -EINVAL);
	CHECK(PARSE(parse_schedstat, "1 2 3 4\n", &s) == 0 && s.timeslices == 3);
}

static void test_loadavg(void)
{
	struct loadavg l;

	CHECK(parse_loadavg(fx, fixture("loadavg"), &l) == 0);
	CHECK(NEAR(l.load1, 0.04) && NEAR(l.load5, 0.12) && NEAR(l.load15, 0.07));
	CHECK(l.runnable == 1 && l.total == 85);
	CHECK(PARSE(parse_loadavg, "12.50 100.00 7 40/1200 99\n", &l) == 0);
	CHECK(NEAR(l.load1, 12.5) && NEAR(l.load5, 100.0) && NEAR(l.load15, 7.0));
	CHECK(l.runnable == 40 && l.total == 1200);
	CHECK(PARSE(parse_loadavg, "0.04 0.12\n", &l) == -EINVAL);
	CHECK(PARSE(parse_loadavg, "a b c 1/2 3\n", &l) == -EINVAL);
	CHECK(PARSE(parse_loadavg, "1. 2 3 1/2 3\n", &l) == -EINVAL);
	CHECK(PARSE(parse_loadavg, "0.04 0.12 0.07 1-85 5\n", &l) == -EINVAL);
	CHECK(PARSE(parse_loadavg, "0.04 0.12 0.07 1/85 5", &l) == -EINVAL);
}

/* ---- PSI ---- */

static void test_psi(void)
{
	struct psi p;

	CHECK(parse_psi(fx, fixture("pressure_cpu"), &p) == 0);
	CHECK(p.present && p.has_full && NEAR(p.some.avg10, 0.45));
	CHECK(NEAR(p.some.avg60, 0.57) && NEAR(p.some.avg300, 0.67));
	CHECK(p.some.total_us == 5082963 && p.full.total_us == 0);
	CHECK(parse_psi(fx, fixture("pressure_io"), &p) == 0);
	CHECK(p.has_full && NEAR(p.full.avg300, 0.40) && p.full.total_us == 3073149);
	CHECK(parse_psi(fx, fixture("pressure_memory"), &p) == 0 && p.has_full);
	CHECK(parse_psi(fx, fixture("pressure_cpu_nofull"), &p) == 0);
	CHECK(p.present && !p.has_full && p.some.total_us == 5082963);
	CHECK(parse_psi(fx, fixture("pressure_io_truncated"), &p) == -EINVAL);
	CHECK(!p.present);
	CHECK(PARSE(parse_psi, "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &p) ==
	      -EINVAL);
	CHECK(PARSE(parse_psi, "some avg10=x avg60=0.00 avg300=0.00 total=0\n", &p) ==
	      -EINVAL);
	CHECK(PARSE(parse_psi, "some avg10=1.00 avg60=0.00 avg300=0.00 total=-1\n", &p) ==
	      -EINVAL);
}

static void test_psi_load(void)
{
	char buf[512];
	struct psi p;

	/* A kernel without PSI has no file: absent, not an error. */
	p.present = true;
	CHECK(sample_psi_load(FIXTURES "no_such_pressure", buf, sizeof(buf), &p) == 0);
	CHECK(!p.present && !p.has_full);
	CHECK(sample_psi_load(FIXTURES "pressure_cpu_nofull", buf, sizeof(buf), &p) == 0);
	CHECK(p.present && !p.has_full && NEAR(p.some.avg10, 0.45));
	CHECK(sample_psi_load(FIXTURES "pressure_io_truncated", buf, sizeof(buf), &p) ==
	      -EINVAL);
	/* Other errors are not "absent". */
	CHECK(sample_psi_load(FIXTURES, buf, sizeof(buf), &p) == -EISDIR);
}

/* ---- cgroup limits ---- */

static void test_cg_cpu_max(void)
{
	struct cg_cpu_max m = { 0, 0 };

	CHECK(parse_cg2_cpu_max(fx, fixture("cgv2_cpu_max_none"), &m) == 0);
	CHECK(m.quota_us == CG_QUOTA_NONE && m.period_us == 100000);
	CHECK(NEAR(cg_effective_cpus(&m, 2), 2.0));
	CHECK(parse_cg2_cpu_max(fx, fixture("cgv2_cpu_max_half"), &m) == 0);
	CHECK(m.quota_us == 50000 && m.period_us == 100000);
	CHECK(NEAR(cg_effective_cpus(&m, 2), 0.5));
	CHECK(PARSE(parse_cg2_cpu_max, "max\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg2_cpu_max, "0 100000\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg2_cpu_max, "50000 0\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg2_cpu_max, "-5 100000\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg2_cpu_max, "maxi 100000\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg2_cpu_max, "max 100000", &m) == -EINVAL);
	CHECK(m.quota_us == 50000); /* failures leave out alone */
}

static void test_cg1_quota_period(void)
{
	struct cg_cpu_max m = { 0, 0 };

	CHECK(parse_cg1_cfs_quota(fx, fixture("cgv1_cfs_quota_us_none"), &m) == 0);
	CHECK(m.quota_us == CG_QUOTA_NONE);
	CHECK(parse_cg1_cfs_period(fx, fixture("cgv1_cfs_period_us"), &m) == 0);
	CHECK(m.period_us == 100000 && NEAR(cg_effective_cpus(&m, 2), 2.0));
	CHECK(parse_cg1_cfs_quota(fx, fixture("cgv1_cfs_quota_us_20000"), &m) == 0);
	CHECK(m.quota_us == 20000 && NEAR(cg_effective_cpus(&m, 2), 0.2));
	CHECK(PARSE(parse_cg1_cfs_quota, "-2\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg1_cfs_quota, "0\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg1_cfs_quota, "abc\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg1_cfs_quota, "-1", &m) == -EINVAL);
	CHECK(PARSE(parse_cg1_cfs_period, "0\n", &m) == -EINVAL);
	CHECK(PARSE(parse_cg1_cfs_period, "-1\n", &m) == -EINVAL);
	CHECK(m.quota_us == 20000 && m.period_us == 100000);
}

static void test_effective_cpus(void)
{
	struct cg_cpu_max m = { 400000, 100000 };

	CHECK(NEAR(cg_effective_cpus(&m, 2), 2.0)); /* quota above the machine */
	CHECK(NEAR(cg_effective_cpus(&m, 8), 4.0));
	CHECK(NEAR(cg_effective_cpus(&m, 0), 1.0)); /* online unknown: 1 */
	m.quota_us = 150000;
	CHECK(NEAR(cg_effective_cpus(&m, 8), 1.5));
	m.period_us = 0; /* never divides by zero */
	CHECK(NEAR(cg_effective_cpus(&m, 8), 8.0));
	CHECK(NEAR(cg_effective_cpus(NULL, 3), 3.0));
}

/* ---- cgroup cpu.stat ---- */

static void test_cg_cpu_stat(void)
{
	struct cg_cpu_stat s;

	CHECK(parse_cg2_cpu_stat(fx, fixture("cgv2_cpu_stat_throttled"), &s) == 0);
	CHECK(s.has_usage && s.has_throttling && s.usage_us == 8712390);
	CHECK(s.nr_periods == 4211 && s.nr_throttled == 1876 && s.throttled_us == 97523114);
	CHECK(parse_cg2_cpu_stat(fx, fixture("cgv2_cpu_stat_nocpuctl"), &s) == 0);
	CHECK(s.has_usage && !s.has_throttling && s.usage_us == 46660173);
	CHECK(parse_cg1_cpu_stat(fx, fixture("cgv1_cpu_stat_root"), &s) == 0);
	CHECK(!s.has_usage && s.has_throttling && s.nr_periods == 0);
	CHECK(parse_cg1_cpu_stat(fx, fixture("cgv1_cpu_stat_throttled"), &s) == 0);
	CHECK(s.nr_periods == 11 && s.nr_throttled == 11 && s.throttled_us == 848441);
	/* Each version's file is garbage to the other's parser. */
	CHECK(parse_cg1_cpu_stat(fx, fixture("cgv2_cpu_stat_nocpuctl"), &s) == -EINVAL);
	CHECK(parse_cg2_cpu_stat(fx, fixture("cgv1_cpu_stat_root"), &s) == -EINVAL);
	CHECK(PARSE(parse_cg2_cpu_stat, "usage_usec abc\n", &s) == -EINVAL);
	CHECK(PARSE(parse_cg1_cpu_stat, "nr_periods 1\nnr_throttled 1\n", &s) == -EINVAL);
	/* Partial throttling lines are not throttling data. */
	CHECK(PARSE(parse_cg2_cpu_stat, "usage_usec 5\nnr_periods 9\n", &s) == 0);
	CHECK(!s.has_throttling && s.nr_periods == 0);
}

/* ---- /proc/self/cgroup ---- */

static void test_self_cgroup_fixtures(void)
{
	struct cg_self s;
	char dir[256];

	CHECK(parse_self_cgroup(fx, fixture("self_cgroup_hybrid"), &s) == 0);
	CHECK(s.has_v2 && s.has_v1_cpu);
	CHECK_STR(s.v2_path, "/");
	CHECK_STR(s.v1_cpu_path, "/");
	CHECK_STR(s.v1_cpu_controllers, "cpu");
	CHECK(cg_self_cpu_dir(&s, "/sys/fs/cgroup", dir, sizeof(dir)) == 1);
	CHECK_STR(dir, "/sys/fs/cgroup/cpu");

	CHECK(parse_self_cgroup(fx, fixture("self_cgroup_v1_child"), &s) == 0);
	CHECK_STR(s.v1_cpu_path, "/drover_fixture_4339");
	CHECK(cg_self_cpu_dir(&s, "/sys/fs/cgroup", dir, sizeof(dir)) == 1);
	CHECK_STR(dir, "/sys/fs/cgroup/cpu/drover_fixture_4339");

	CHECK(parse_self_cgroup(fx, fixture("self_cgroup_v2"), &s) == 0);
	CHECK(s.has_v2 && !s.has_v1_cpu);
	CHECK(cg_self_cpu_dir(&s, "/sys/fs/cgroup", dir, sizeof(dir)) == 2);
	CHECK_STR(dir, "/sys/fs/cgroup/system.slice/drover.service");
	CHECK(cg_self_cpu_dir(&s, "/sys/fs/cgroup", dir, 20) == -ENAMETOOLONG);

	/* "cpuset" is not "cpu"; a path may hold ':'. */
	CHECK(parse_self_cgroup(fx, fixture("self_cgroup_v1_cpuacct"), &s) == 0);
	CHECK(!s.has_v2 && s.has_v1_cpu);
	CHECK_STR(s.v1_cpu_controllers, "cpu,cpuacct");
	CHECK_STR(s.v1_cpu_path, "/docker/abc:def");
}

static void test_self_cgroup_garbage(void)
{
	struct cg_self s;
	char line[CG_PATH_MAX + 16];
	char buf[4096];
	size_t len;

	CHECK(PARSE(parse_self_cgroup, "garbage\n", &s) == -EINVAL);
	CHECK(PARSE(parse_self_cgroup, "1:cpu:relative\n", &s) == -EINVAL);
	CHECK(PARSE(parse_self_cgroup, "4:memory:/x\n3:cpuset:/\n", &s) == -EINVAL);
	CHECK(PARSE(parse_self_cgroup, ":cpu:/x\n", &s) == -EINVAL);
	CHECK(PARSE(parse_self_cgroup, "0::/x", &s) == -EINVAL); /* cut */
	CHECK(cg_self_cpu_dir(&s, "/sys/fs/cgroup", buf, sizeof(buf)) == -EINVAL);
	memset(line, 'a', sizeof(line));
	memcpy(line, "0::/", 4);
	line[sizeof(line) - 1] = '\n';
	CHECK(parse_self_cgroup(line, sizeof(line), &s) == -EINVAL);
	CHECK(!s.has_v2);
	CHECK(sample_read_file("/proc/self/cgroup", buf, sizeof(buf), &len) == 0);
	CHECK(parse_self_cgroup(buf, len, &s) == 0);
}

/* ---- rate helpers ---- */

static void test_rate_helpers(void)
{
	CHECK(sample_delta(10, 25) == 15);
	CHECK(sample_delta(25, 10) == 0); /* counter went backwards */
	CHECK(NEAR(sample_rate(100, 400, 2.0), 150.0));
	CHECK(NEAR(sample_rate(400, 100, 2.0), 0.0));
	CHECK(NEAR(sample_rate(100, 400, 0.0), 0.0));
	CHECK(NEAR(sample_rate(100, 400, -1.0), 0.0));
	CHECK(NEAR(sample_rate(100, 400, NAN), 0.0));
	CHECK(NEAR(sample_per_request(0, 90, 30), 3.0));
	CHECK(NEAR(sample_per_request(0, 90, 0), 0.0)); /* no requests */
}

static void make_sample(struct proc_sample *s, uint64_t ticks, uint64_t csw, uint64_t ns)
{
	memset(s, 0, sizeof(*s));
	s->stat.pid = 100;
	s->stat.starttime = 5000;
	s->stat.utime = ticks;
	s->stat.stime = ticks / 2;
	s->status.vcsw = csw;
	s->status.ivcsw = csw / 10;
	s->sched.cpu_ns = ns;
	s->sched.wait_ns = ns / 4;
	s->sched.timeslices = csw;
}

static void test_proc_rates(void)
{
	struct proc_sample a, b;
	struct proc_rates r;
	struct proc_per_request q;

	make_sample(&a, 100, 1000, 1000000000ull);
	make_sample(&b, 200, 3000, 3000000000ull);
	CHECK(sample_proc_rates(&a, &b, 2.0, 100, &r) == 0);
	CHECK(NEAR(r.cpu, 0.75)); /* (100 + 50) ticks / 100 Hz / 2 s */
	CHECK(NEAR(r.oncpu, 1.0) && NEAR(r.runq_wait, 0.25));
	CHECK(NEAR(r.vcsw, 1000.0) && NEAR(r.ivcsw, 100.0) && NEAR(r.timeslices, 1000.0));
	CHECK(sample_proc_per_request(&a, &b, 400, &q) == 0);
	CHECK(NEAR(q.cpu_ms, 5.0) && NEAR(q.runq_wait_ms, 1.25) && NEAR(q.vcsw, 5.0));
	CHECK(sample_proc_per_request(&a, &b, 0, &q) == 0);
	CHECK(NEAR(q.cpu_ms, 0.0) && NEAR(q.vcsw, 0.0));
	/* A counter going backwards gives 0, never a negative rate. */
	b.status.ivcsw = 1;
	CHECK(sample_proc_rates(&a, &b, 2.0, 100, &r) == 0 && NEAR(r.ivcsw, 0.0));
	CHECK(sample_proc_rates(&a, &b, 0.0, 100, &r) == 0 && NEAR(r.cpu, 0.0));
	CHECK(sample_proc_rates(&a, &b, 2.0, 0, &r) == 0 && NEAR(r.cpu, 0.0));
	/* A new process on a reused pid is not comparable. */
	b.stat.starttime = 6000;
	CHECK(sample_proc_rates(&a, &b, 2.0, 100, &r) == -ESRCH && NEAR(r.vcsw, 0.0));
	CHECK(sample_proc_per_request(&a, &b, 10, &q) == -ESRCH && NEAR(q.vcsw, 0.0));
}

static void test_cg_rates(void)
{
	struct cg_cpu_stat a = { .has_throttling = true, .nr_periods = 11, .nr_throttled = 11,
				 .throttled_us = 848441 };
	struct cg_cpu_stat b = a;
	struct cg_rates r;

	b.nr_periods = 31;
	b.nr_throttled = 21;
	b.throttled_us += 500000;
	sample_cg_rates(&a, &b, 2.0, &r);
	CHECK(NEAR(r.throttled_frac, 0.5) && NEAR(r.throttled_per_s, 0.25));
	CHECK(NEAR(r.usage_cpus, 0.0)); /* v1: no usage in cpu.stat */
	/* v2 usage; then a reset group (counters back to small numbers). */
	a.has_usage = b.has_usage = true;
	a.usage_us = 1000000;
	b.usage_us = 3000000;
	sample_cg_rates(&a, &b, 1.0, &r);
	CHECK(NEAR(r.usage_cpus, 2.0));
	sample_cg_rates(&b, &a, 1.0, &r);
	CHECK(NEAR(r.usage_cpus, 0.0) && NEAR(r.throttled_frac, 0.0));
	/* No periods elapsed: no division by zero. */
	sample_cg_rates(&a, &a, 1.0, &r);
	CHECK(NEAR(r.throttled_frac, 0.0));
}

/* ---- per-thread aggregation ---- */

static struct task_sample task(int tid, uint64_t vcsw, uint64_t ivcsw, uint64_t cpu_ns)
{
	struct task_sample t;

	memset(&t, 0, sizeof(t));
	t.tid = tid;
	t.status.vcsw = vcsw;
	t.status.ivcsw = ivcsw;
	t.sched.cpu_ns = cpu_ns;
	return t;
}

static void check_agg(const struct thread_agg *g)
{
	/* tid 11 vanished, 13 is new, 14 reused with a lower count. */
	CHECK(g->n_both == 3 && g->n_new == 1 && g->n_gone == 1);
	CHECK(g->vcsw == 100 + 500 && g->ivcsw == 10 + 1);
	CHECK(g->cpu_ns == 1000 + 3000);
	CHECK(g->busiest_tid == 12 && g->busiest_csw == 501);
}

static void test_threads_aggregate(void)
{
	struct task_sample before[] = { task(10, 1000, 50, 1000), task(11, 9999, 99, 9999),
					task(12, 2000, 60, 2000), task(14, 800, 80, 8000) };
	struct task_sample after[] = { task(10, 1100, 60, 2000), task(12, 2500, 61, 5000),
				       task(13, 7777, 77, 7777), task(14, 5, 1, 100) };
	struct task_sample shuffled_b[] = { before[3], before[1], before[0], before[2] };
	struct task_sample shuffled_a[] = { after[2], after[1], after[3], after[0] };
	struct thread_agg g;

	sample_threads_aggregate(before, 4, after, 4, &g);
	check_agg(&g);
	sample_threads_aggregate(shuffled_b, 4, shuffled_a, 4, &g);
	check_agg(&g);
	sample_threads_aggregate(NULL, 0, after, 4, &g);
	CHECK(g.n_new == 4 && g.n_both == 0 && g.vcsw == 0 && g.busiest_tid == 0);
	sample_threads_aggregate(before, 4, NULL, 0, &g);
	CHECK(g.n_gone == 4 && g.n_new == 0 && g.vcsw == 0);
	sample_threads_aggregate(before, 4, before, 4, &g);
	CHECK(g.n_both == 4 && g.vcsw == 0 && g.busiest_tid == 0);
}

/* Real per-thread files: the main thread's status is not the process total. */
static void test_threads_fixtures(void)
{
	struct task_sample t[2];
	struct proc_status proc;
	struct thread_agg g;

	memset(t, 0, sizeof(t));
	t[0].tid = 5186;
	t[1].tid = 5227;
	CHECK(parse_proc_status(fx, fixture("task_status_0"), &t[0].status) == 0);
	CHECK(parse_schedstat(fx, fixture("task_schedstat_0"), &t[0].sched) == 0);
	CHECK(parse_proc_status(fx, fixture("task_status_1"), &t[1].status) == 0);
	CHECK(parse_schedstat(fx, fixture("task_schedstat_1"), &t[1].sched) == 0);
	CHECK(parse_proc_status(fx, fixture("proc_status_python"), &proc) == 0);
	CHECK(t[1].status.vcsw > proc.vcsw);
	/* From nothing to these two threads, then one of them gone. */
	sample_threads_aggregate(NULL, 0, t, 2, &g);
	CHECK(g.n_new == 2);
	sample_threads_aggregate(t, 2, t + 1, 1, &g);
	CHECK(g.n_both == 1 && g.n_gone == 1 && g.vcsw == 0);
}

/* /proc/vmstat swap counters: found among other lines, strict numbers, the
 * live file on this kernel. */
static void test_vmstat_swap(void)
{
	static const char ok[] = "nr_free_pages 12\npswpin 7\npswpout 1234567890123\npswp 9\n";
	struct vmstat_swap v;
	CHECK(parse_vmstat_swap(ok, sizeof(ok) - 1, &v) == 0);
	CHECK(v.pswpin == 7 && v.pswpout == 1234567890123ull);
	static const char last[] = "pswpout 2\npswpin 3"; /* no final newline */
	CHECK(parse_vmstat_swap(last, sizeof(last) - 1, &v) == 0 && v.pswpin == 3 && v.pswpout == 2);
	static const char missing[] = "pswpin 1\npswpoutx 2\n";
	CHECK(parse_vmstat_swap(missing, sizeof(missing) - 1, &v) == -EINVAL);
	static const char bad[] = "pswpin 1x\npswpout 2\n";
	CHECK(parse_vmstat_swap(bad, sizeof(bad) - 1, &v) == -EINVAL);
	static const char empty[] = "pswpin \npswpout 2\n";
	CHECK(parse_vmstat_swap(empty, sizeof(empty) - 1, &v) == -EINVAL);
	static const char huge[] = "pswpin 99999999999999999999999\npswpout 2\n";
	CHECK(parse_vmstat_swap(huge, sizeof(huge) - 1, &v) == -EINVAL);
	CHECK(parse_vmstat_swap("", 0, &v) == -EINVAL);
	char buf[16384];
	size_t len;
	if (sample_read_file("/proc/vmstat", buf, sizeof(buf), &len) == 0)
		CHECK(parse_vmstat_swap(buf, len, &v) == 0);
}

int main(void)
{
	RUN(test_read_file);
	RUN(test_stat_fixtures);
	RUN(test_stat_live);
	RUN(test_stat_garbage);
	RUN(test_status_fixtures);
	RUN(test_status_garbage);
	RUN(test_status_live);
	RUN(test_smaps_rollup);
	RUN(test_schedstat);
	RUN(test_loadavg);
	RUN(test_vmstat_swap);
	RUN(test_psi);
	RUN(test_psi_load);
	RUN(test_cg_cpu_max);
	RUN(test_cg1_quota_period);
	RUN(test_effective_cpus);
	RUN(test_cg_cpu_stat);
	RUN(test_self_cgroup_fixtures);
	RUN(test_self_cgroup_garbage);
	RUN(test_rate_helpers);
	RUN(test_proc_rates);
	RUN(test_cg_rates);
	RUN(test_threads_aggregate);
	RUN(test_threads_fixtures);
	RUN(test_truncated_prefixes);
	return check_summary();
}
