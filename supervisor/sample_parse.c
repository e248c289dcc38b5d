/* Parsers for the text the master measures its workers with (/proc, cgroup
 * v1/v2, PSI), the rate helpers over two samples, and sample_read_file().
 * Parsing works on a bounded cursor, never strtod/strtoull, so input need not
 * be NUL-terminated and a cut or garbled read gives -EINVAL, not a crash. */
#include "sample_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- cursor primitives ---- */

struct cur {
	const char *p, *end;
};

/* Length up to and including the last '\n': a final line without one was cut
 * short by a read that did not get the whole file. */
static size_t complete_len(const char *text, size_t len)
{
	const char *nl;

	if (!text)
		return 0;
	nl = memrchr(text, '\n', len);
	return nl ? (size_t)(nl - text) + 1 : 0;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static void skip_blank(struct cur *c)
{
	while (c->p < c->end && is_blank(*c->p))
		c->p++;
}

/* A number or word must end at a separator, so "12x" is not read as 12. */
static bool at_token_end(const struct cur *c)
{
	return c->p < c->end && (is_blank(*c->p) || *c->p == '\n');
}

static int expect(struct cur *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return -EINVAL;
	c->p++;
	return 0;
}

static int expect_word(struct cur *c, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
		return -EINVAL;
	c->p += n;
	return 0;
}

static int take_u64(struct cur *c, uint64_t *v)
{
	const char *start = c->p;
	uint64_t x = 0;

	while (c->p < c->end && is_digit(*c->p)) {
		unsigned d = (unsigned)(*c->p - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
		c->p++;
	}
	if (c->p == start)
		return -EINVAL;
	*v = x;
	return 0;
}

/* An optional '-' then digits; the magnitude stays unsigned so that fields
 * such as rsslim (2^64 - 1) can be skipped without overflow. */
static int take_signed(struct cur *c, bool *neg, uint64_t *mag)
{
	*neg = c->p < c->end && *c->p == '-';
	if (*neg)
		c->p++;
	return take_u64(c, mag);
}

/* "digits[.digits]" as in loadavg and PSI; locale-independent, unlike strtod. */
static int take_decimal(struct cur *c, double *v)
{
	uint64_t ip;
	double frac = 0, scale = 1;

	if (take_u64(c, &ip) < 0)
		return -EINVAL;
	if (c->p < c->end && *c->p == '.') {
		const char *start = ++c->p;

		for (; c->p < c->end && is_digit(*c->p); c->p++) {
			if (scale < 1e15) {
				frac = frac * 10 + (*c->p - '0');
				scale *= 10;
			}
		}
		if (c->p == start)
			return -EINVAL;
	}
	*v = (double)ip + frac / scale;
	return 0;
}

/* ---- "key<sep>value" files: status, smaps_rollup, cpu.stat ---- */

enum field_kind { F_U64, F_UINT, F_STATE };

struct field {
	const char *key;
	enum field_kind kind;
	size_t off;
};

static int field_value(struct cur *c, const struct field *f, void *out)
{
	char *dst = (char *)out + f->off;
	uint64_t v;

	skip_blank(c);
	if (f->kind == F_STATE) {
		/* "State:\tR (running)": the letter is what matters. */
		if (c->p >= c->end || !((*c->p >= 'A' && *c->p <= 'Z') ||
					(*c->p >= 'a' && *c->p <= 'z')))
			return -EINVAL;
		*dst = *c->p;
		return 0;
	}
	if (take_u64(c, &v) < 0 || !at_token_end(c))
		return -EINVAL;
	if (f->kind == F_UINT) {
		if (v > UINT_MAX)
			return -EINVAL;
		*(unsigned *)(void *)dst = (unsigned)v;
	} else {
		*(uint64_t *)(void *)dst = v;
	}
	return 0;
}

/* Sets bit i of *seen for each fields[i] found; lines with other keys are
 * skipped (kernels add lines), a known key with a bad value is -EINVAL. */
static int parse_keyed(const char *text, size_t len, char sep, const struct field *fields,
		       size_t nf, void *out, unsigned *seen)
{
	const char *p = text, *end = text + complete_len(text, len);

	*seen = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = memchr(p, sep, (size_t)(nl - p));

		for (size_t i = 0; s && i < nf; i++) {
			struct cur c = { s + 1, nl + 1 };

			if (strlen(fields[i].key) != (size_t)(s - p) ||
			    memcmp(fields[i].key, p, (size_t)(s - p)) != 0)
				continue;
			if (field_value(&c, &fields[i], out) < 0)
				return -EINVAL;
			*seen |= 1u << i;
			break;
		}
		p = nl + 1;
	}
	return 0;
}

#define ALL_OF(n) ((1u << (n)) - 1)
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- /proc/PID/stat ---- */

/* Fields 4..39 (proc(5) numbering); the ones kept must not be negative. */
static int stat_number(struct cur *c, int field, struct proc_stat *out)
{
	bool neg;
	uint64_t v;

	if (take_signed(c, &neg, &v) < 0)
		return -EINVAL;
	switch (field) {
	case 14: out->utime = v; break;
	case 15: out->stime = v; break;
	case 20: out->num_threads = (long)v; return neg || v > LONG_MAX ? -EINVAL : 0;
	case 22: out->starttime = v; break;
	case 23: out->vsize = v; break;
	case 24: out->rss = v; break;
	case 39: out->processor = (int)v; return neg || v > INT_MAX ? -EINVAL : 0;
	default: return 0;
	}
	return neg ? -EINVAL : 0;
}

static int stat_fields(struct cur *c, struct proc_stat *out)
{
	for (int field = 3; field <= 39; field++) {
		if (expect(c, ' ') < 0)
			return -EINVAL;
		if (field == 3) {
			if (c->p >= c->end || is_blank(*c->p) || *c->p == '\n')
				return -EINVAL;
			out->state = *c->p++;
		} else if (stat_number(c, field, out) < 0) {
			return -EINVAL;
		}
		if (!at_token_end(c))
			return -EINVAL;
	}
	return 0;
}

int parse_proc_stat(const char *text, size_t len, struct proc_stat *out)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL; /* and NULL + 0 below would be UB (UBSan, tests/run --sanitize) */
	struct cur c = { text, text + complete_len(text, len) };
	const char *open, *close;
	uint64_t pid;
	size_t n;

	if (take_u64(&c, &pid) < 0 || pid > INT_MAX || expect_word(&c, " (") < 0)
		return -EINVAL;
	/* comm may hold ')' and '\n'; the fields after it are all numbers. */
	open = c.p;
	close = memrchr(open, ')', (size_t)(c.end - open));
	if (!close)
		return -EINVAL;
	n = (size_t)(close - open);
	if (n >= sizeof(out->comm))
		n = sizeof(out->comm) - 1;
	memcpy(out->comm, open, n);
	out->pid = (int)pid;
	c.p = close + 1;
	if (stat_fields(&c, out) < 0) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

/* ---- status, smaps_rollup, schedstat, loadavg ---- */

int parse_proc_status(const char *text, size_t len, struct proc_status *out)
{
	static const struct field f[] = {
		{ "State", F_STATE, offsetof(struct proc_status, state) },
		{ "Threads", F_UINT, offsetof(struct proc_status, threads) },
		{ "voluntary_ctxt_switches", F_U64, offsetof(struct proc_status, vcsw) },
		{ "nonvoluntary_ctxt_switches", F_U64, offsetof(struct proc_status, ivcsw) },
		{ "VmRSS", F_U64, offsetof(struct proc_status, vm_rss_kb) },
		{ "VmHWM", F_U64, offsetof(struct proc_status, vm_hwm_kb) },
	};
	unsigned seen;

	memset(out, 0, sizeof(*out));
	if (parse_keyed(text, len, ':', f, NFIELDS(f), out, &seen) < 0 ||
	    (seen & ALL_OF(4)) != ALL_OF(4)) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->has_vm = (seen & (1u << 4)) != 0;
	return 0;
}

int parse_smaps_rollup(const char *text, size_t len, struct smaps_rollup *out)
{
	static const struct field f[] = {
		{ "Rss", F_U64, offsetof(struct smaps_rollup, rss_kb) },
		{ "Pss", F_U64, offsetof(struct smaps_rollup, pss_kb) },
		{ "Private_Dirty", F_U64, offsetof(struct smaps_rollup, private_dirty_kb) },
		{ "Anonymous", F_U64, offsetof(struct smaps_rollup, anonymous_kb) },
		{ "Swap", F_U64, offsetof(struct smaps_rollup, swap_kb) },
	};
	unsigned seen;

	memset(out, 0, sizeof(*out));
	if (parse_keyed(text, len, ':', f, NFIELDS(f), out, &seen) < 0 ||
	    seen != ALL_OF(NFIELDS(f))) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

int parse_schedstat(const char *text, size_t len, struct schedstat *out)
{
	struct cur c = { text, text + complete_len(text, len) };
	struct schedstat s;

	memset(out, 0, sizeof(*out));
	if (take_u64(&c, &s.cpu_ns) < 0 || expect(&c, ' ') < 0 ||
	    take_u64(&c, &s.wait_ns) < 0 || expect(&c, ' ') < 0 ||
	    take_u64(&c, &s.timeslices) < 0 || !at_token_end(&c))
		return -EINVAL;
	*out = s;
	return 0;
}

int parse_loadavg(const char *text, size_t len, struct loadavg *out)
{
	struct cur c = { text, text + complete_len(text, len) };
	uint64_t runnable, total;
	struct loadavg l;

	memset(out, 0, sizeof(*out));
	if (take_decimal(&c, &l.load1) < 0 || expect(&c, ' ') < 0 ||
	    take_decimal(&c, &l.load5) < 0 || expect(&c, ' ') < 0 ||
	    take_decimal(&c, &l.load15) < 0 || expect(&c, ' ') < 0 ||
	    take_u64(&c, &runnable) < 0 || expect(&c, '/') < 0 ||
	    take_u64(&c, &total) < 0 || !at_token_end(&c) ||
	    runnable > UINT_MAX || total > UINT_MAX)
		return -EINVAL;
	l.runnable = (unsigned)runnable;
	l.total = (unsigned)total;
	*out = l;
	return 0;
}

/* ---- /proc/vmstat ---- */

/* The value of the line "key N" in text[0..len), or -EINVAL. */
static int vmstat_value(const char *text, size_t len, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < len;) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t llen = nl ? (size_t)(nl - line) : len - i;
		if (llen > klen + 1 && memcmp(line, key, klen) == 0 && line[klen] == ' ') {
			uint64_t v = 0;
			size_t j = klen + 1, digits = 0;
			for (; j < llen && line[j] >= '0' && line[j] <= '9'; j++, digits++) {
				if (v > (UINT64_MAX - 9) / 10)
					return -EINVAL;
				v = v * 10 + (uint64_t)(line[j] - '0');
			}
			if (!digits || j != llen)
				return -EINVAL;
			*out = v;
			return 0;
		}
		i += llen + 1;
	}
	return -EINVAL;
}

int parse_vmstat_swap(const char *text, size_t len, struct vmstat_swap *out)
{
	struct vmstat_swap v;
	memset(out, 0, sizeof(*out));
	if (vmstat_value(text, len, "pswpin", &v.pswpin) < 0 ||
	    vmstat_value(text, len, "pswpout", &v.pswpout) < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---- PSI ---- */

static int psi_line(struct cur *c, struct psi_line *l)
{
	if (expect_word(c, "avg10=") < 0 || take_decimal(c, &l->avg10) < 0 ||
	    expect_word(c, " avg60=") < 0 || take_decimal(c, &l->avg60) < 0 ||
	    expect_word(c, " avg300=") < 0 || take_decimal(c, &l->avg300) < 0 ||
	    expect_word(c, " total=") < 0 || take_u64(c, &l->total_us) < 0 ||
	    !at_token_end(c))
		return -EINVAL;
	return 0;
}

int parse_psi(const char *text, size_t len, struct psi *out)
{
	const char *p = text, *end = text + complete_len(text, len);
	bool some = false;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct cur c = { p, nl + 1 };
		int r = 0;

		if (expect_word(&c, "some ") == 0) {
			r = psi_line(&c, &out->some);
			some = true;
		} else if (expect_word(&c, "full ") == 0) {
			r = psi_line(&c, &out->full);
			out->has_full = true;
		}
		if (r < 0)
			break;
		p = nl + 1;
	}
	if (p < end || !some) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->present = true;
	return 0;
}

int sample_psi_load(const char *path, char *buf, size_t cap, struct psi *out)
{
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	r = sample_read_file(path, buf, cap, &n);
	/* No /proc/pressure (CONFIG_PSI off) or psi=0 on the command line. */
	if (r == -ENOENT || r == -EOPNOTSUPP)
		return 0;
	if (r < 0)
		return r;
	return parse_psi(buf, n, out);
}

/* ---- cgroup CPU limits and cpu.stat ---- */

int parse_cg2_cpu_max(const char *text, size_t len, struct cg_cpu_max *out)
{
	struct cur c = { text, text + complete_len(text, len) };
	uint64_t quota, period;

	if (expect_word(&c, "max") == 0) {
		quota = 0;
	} else if (take_u64(&c, &quota) < 0 || quota == 0 || quota > INT64_MAX) {
		return -EINVAL;
	}
	if (expect(&c, ' ') < 0 || take_u64(&c, &period) < 0 || period == 0 ||
	    !at_token_end(&c))
		return -EINVAL;
	out->quota_us = quota ? (int64_t)quota : CG_QUOTA_NONE;
	out->period_us = period;
	return 0;
}

int parse_cg1_cfs_quota(const char *text, size_t len, struct cg_cpu_max *out)
{
	struct cur c = { text, text + complete_len(text, len) };
	bool neg;
	uint64_t v;

	if (take_signed(&c, &neg, &v) < 0 || !at_token_end(&c))
		return -EINVAL;
	if (neg && v == 1)
		out->quota_us = CG_QUOTA_NONE;
	else if (!neg && v > 0 && v <= INT64_MAX)
		out->quota_us = (int64_t)v;
	else
		return -EINVAL;
	return 0;
}

int parse_cg1_cfs_period(const char *text, size_t len, struct cg_cpu_max *out)
{
	struct cur c = { text, text + complete_len(text, len) };
	uint64_t v;

	if (take_u64(&c, &v) < 0 || v == 0 || !at_token_end(&c))
		return -EINVAL;
	out->period_us = v;
	return 0;
}

double cg_effective_cpus(const struct cg_cpu_max *m, unsigned online_cpus)
{
	double online = online_cpus ? (double)online_cpus : 1.0;
	double cpus;

	if (!m || m->quota_us <= 0 || m->period_us == 0)
		return online;
	cpus = (double)m->quota_us / (double)m->period_us;
	return cpus < online ? cpus : online;
}

int parse_cg2_cpu_stat(const char *text, size_t len, struct cg_cpu_stat *out)
{
	static const struct field f[] = {
		{ "usage_usec", F_U64, offsetof(struct cg_cpu_stat, usage_us) },
		{ "nr_periods", F_U64, offsetof(struct cg_cpu_stat, nr_periods) },
		{ "nr_throttled", F_U64, offsetof(struct cg_cpu_stat, nr_throttled) },
		{ "throttled_usec", F_U64, offsetof(struct cg_cpu_stat, throttled_us) },
	};
	unsigned seen;

	memset(out, 0, sizeof(*out));
	if (parse_keyed(text, len, ' ', f, NFIELDS(f), out, &seen) < 0 || !(seen & 1u)) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->has_usage = true;
	/* The throttling lines come only with the cpu controller enabled. */
	out->has_throttling = (seen & 0xeu) == 0xeu;
	if (!out->has_throttling)
		out->nr_periods = out->nr_throttled = out->throttled_us = 0;
	return 0;
}

int parse_cg1_cpu_stat(const char *text, size_t len, struct cg_cpu_stat *out)
{
	static const struct field f[] = {
		{ "nr_periods", F_U64, offsetof(struct cg_cpu_stat, nr_periods) },
		{ "nr_throttled", F_U64, offsetof(struct cg_cpu_stat, nr_throttled) },
		{ "throttled_time", F_U64, offsetof(struct cg_cpu_stat, throttled_us) },
	};
	unsigned seen;

	memset(out, 0, sizeof(*out));
	if (parse_keyed(text, len, ' ', f, NFIELDS(f), out, &seen) < 0 ||
	    seen != ALL_OF(NFIELDS(f))) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->throttled_us /= 1000; /* v1 counts nanoseconds */
	out->has_throttling = true;
	return 0;
}

/* ---- /proc/self/cgroup ---- */

static int copy_path(char *dst, size_t cap, const char *s, const char *e)
{
	size_t n = (size_t)(e - s);

	if (n == 0 || *s != '/' || n >= cap || memchr(s, '\0', n))
		return -EINVAL;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* Is "cpu" one of the comma-separated names in [s, e)?  ("cpuset" is not.) */
static bool has_cpu_controller(const char *s, const char *e)
{
	while (s < e) {
		const char *comma = memchr(s, ',', (size_t)(e - s));
		const char *tok_end = comma ? comma : e;

		if (tok_end - s == 3 && memcmp(s, "cpu", 3) == 0)
			return true;
		s = tok_end + 1;
	}
	return false;
}

/* "ID:controllers:path"; the path itself may contain ':'. */
static int self_cgroup_line(const char *p, const char *nl, struct cg_self *out)
{
	const char *c1 = memchr(p, ':', (size_t)(nl - p)), *c2;
	size_t nctl;

	if (!c1 || c1 == p)
		return -EINVAL;
	c2 = memchr(c1 + 1, ':', (size_t)(nl - c1 - 1));
	if (!c2)
		return -EINVAL;
	nctl = (size_t)(c2 - c1 - 1);
	if (c1 - p == 1 && *p == '0' && nctl == 0) {
		out->has_v2 = true;
		return copy_path(out->v2_path, sizeof(out->v2_path), c2 + 1, nl);
	}
	if (!has_cpu_controller(c1 + 1, c2))
		return 0;
	if (nctl >= sizeof(out->v1_cpu_controllers))
		return -EINVAL;
	memcpy(out->v1_cpu_controllers, c1 + 1, nctl);
	out->v1_cpu_controllers[nctl] = '\0';
	out->has_v1_cpu = true;
	return copy_path(out->v1_cpu_path, sizeof(out->v1_cpu_path), c2 + 1, nl);
}

int parse_self_cgroup(const char *text, size_t len, struct cg_self *out)
{
	const char *p = text, *end = text + complete_len(text, len);

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (self_cgroup_line(p, nl, out) < 0) {
			memset(out, 0, sizeof(*out));
			return -EINVAL;
		}
		p = nl + 1;
	}
	return out->has_v2 || out->has_v1_cpu ? 0 : -EINVAL;
}

int cg_self_cpu_dir(const struct cg_self *s, const char *root, char *buf, size_t cap)
{
	const char *path;
	int n, version;

	if (s->has_v1_cpu) {
		path = s->v1_cpu_path;
		version = 1;
	} else if (s->has_v2) {
		path = s->v2_path;
		version = 2;
	} else {
		return -EINVAL;
	}
	if (strcmp(path, "/") == 0)
		path = ""; /* the root group: no trailing slash */
	if (version == 1)
		n = snprintf(buf, cap, "%s/%s%s", root, s->v1_cpu_controllers, path);
	else
		n = snprintf(buf, cap, "%s%s", root, path);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return version;
}

/* ---- rates ---- */

uint64_t sample_delta(uint64_t before, uint64_t after)
{
	return after > before ? after - before : 0;
}

double sample_rate(uint64_t before, uint64_t after, double elapsed_s)
{
	/* "> 0" is also false for NaN. */
	return elapsed_s > 0 ? (double)sample_delta(before, after) / elapsed_s : 0;
}

double sample_per_request(uint64_t before, uint64_t after, uint64_t requests)
{
	return requests ? (double)sample_delta(before, after) / (double)requests : 0;
}

/* A pid reused by a new worker restarts every counter from zero. */
static bool same_process(const struct proc_sample *a, const struct proc_sample *b)
{
	return a->stat.pid == b->stat.pid && a->stat.starttime == b->stat.starttime;
}

int sample_proc_rates(const struct proc_sample *a, const struct proc_sample *b,
		      double elapsed_s, long clk_tck, struct proc_rates *out)
{
	uint64_t ticks;

	memset(out, 0, sizeof(*out));
	if (!same_process(a, b))
		return -ESRCH;
	ticks = sample_delta(a->stat.utime, b->stat.utime) +
		sample_delta(a->stat.stime, b->stat.stime);
	if (elapsed_s > 0 && clk_tck > 0)
		out->cpu = (double)ticks / (double)clk_tck / elapsed_s;
	out->oncpu = sample_rate(a->sched.cpu_ns, b->sched.cpu_ns, elapsed_s) / 1e9;
	out->runq_wait = sample_rate(a->sched.wait_ns, b->sched.wait_ns, elapsed_s) / 1e9;
	out->timeslices = sample_rate(a->sched.timeslices, b->sched.timeslices, elapsed_s);
	out->vcsw = sample_rate(a->status.vcsw, b->status.vcsw, elapsed_s);
	out->ivcsw = sample_rate(a->status.ivcsw, b->status.ivcsw, elapsed_s);
	return 0;
}

/* CPU per request comes from schedstat: clock ticks (10 ms at 100 Hz) are
 * far coarser than a typical request. */
int sample_proc_per_request(const struct proc_sample *a, const struct proc_sample *b,
			    uint64_t requests, struct proc_per_request *out)
{
	memset(out, 0, sizeof(*out));
	if (!same_process(a, b))
		return -ESRCH;
	out->cpu_ms = sample_per_request(a->sched.cpu_ns, b->sched.cpu_ns, requests) / 1e6;
	out->runq_wait_ms =
		sample_per_request(a->sched.wait_ns, b->sched.wait_ns, requests) / 1e6;
	out->vcsw = sample_per_request(a->status.vcsw, b->status.vcsw, requests);
	out->ivcsw = sample_per_request(a->status.ivcsw, b->status.ivcsw, requests);
	return 0;
}

void sample_cg_rates(const struct cg_cpu_stat *a, const struct cg_cpu_stat *b,
		     double elapsed_s, struct cg_rates *out)
{
	memset(out, 0, sizeof(*out));
	if (a->has_usage && b->has_usage)
		out->usage_cpus = sample_rate(a->usage_us, b->usage_us, elapsed_s) / 1e6;
	if (a->has_throttling && b->has_throttling) {
		uint64_t periods = sample_delta(a->nr_periods, b->nr_periods);
		uint64_t throttled = sample_delta(a->nr_throttled, b->nr_throttled);

		if (periods)
			out->throttled_frac = throttled >= periods ? 1.0 :
					      (double)throttled / (double)periods;
		out->throttled_per_s =
			sample_rate(a->throttled_us, b->throttled_us, elapsed_s) / 1e6;
	}
}

/* ---- per-thread aggregation ---- */

static void agg_pair(const struct task_sample *b, const struct task_sample *a,
		     struct thread_agg *out)
{
	uint64_t v = sample_delta(b->status.vcsw, a->status.vcsw);
	uint64_t iv = sample_delta(b->status.ivcsw, a->status.ivcsw);

	out->vcsw += v;
	out->ivcsw += iv;
	out->cpu_ns += sample_delta(b->sched.cpu_ns, a->sched.cpu_ns);
	out->wait_ns += sample_delta(b->sched.wait_ns, a->sched.wait_ns);
	out->n_both++;
	if (v + iv > out->busiest_csw) {
		out->busiest_csw = v + iv;
		out->busiest_tid = a->tid;
	}
}

static bool tids_sorted(const struct task_sample *t, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (t[i].tid <= t[i - 1].tid)
			return false;
	return true;
}

static void agg_merge(const struct task_sample *before, size_t nb,
		      const struct task_sample *after, size_t na, struct thread_agg *out)
{
	size_t i = 0, j = 0;

	while (i < nb && j < na) {
		if (before[i].tid == after[j].tid) {
			agg_pair(&before[i++], &after[j++], out);
		} else if (before[i].tid < after[j].tid) {
			out->n_gone++;
			i++;
		} else {
			out->n_new++;
			j++;
		}
	}
	out->n_gone += (unsigned)(nb - i);
	out->n_new += (unsigned)(na - j);
}

static const struct task_sample *find_tid(const struct task_sample *t, size_t n, int tid)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].tid == tid)
			return &t[i];
	return NULL;
}

static void agg_quadratic(const struct task_sample *before, size_t nb,
			  const struct task_sample *after, size_t na, struct thread_agg *out)
{
	for (size_t j = 0; j < na; j++) {
		const struct task_sample *b = find_tid(before, nb, after[j].tid);

		if (b)
			agg_pair(b, &after[j], out);
		else
			out->n_new++;
	}
	for (size_t i = 0; i < nb; i++)
		if (!find_tid(after, na, before[i].tid))
			out->n_gone++;
}

void sample_threads_aggregate(const struct task_sample *before, size_t nb,
			      const struct task_sample *after, size_t na,
			      struct thread_agg *out)
{
	memset(out, 0, sizeof(*out));
	if (tids_sorted(before, nb) && tids_sorted(after, na))
		agg_merge(before, nb, after, na, out);
	else
		agg_quadratic(before, nb, after, na, out);
}

/* ---- I/O ---- */

/* Reads until EOF or until buf is full; a full buffer means the file may go
 * on, and a cut file must not pass as whole. */
static int read_all(int fd, char *buf, size_t cap, size_t *got)
{
	size_t n = 0;
	ssize_t r = 1;

	while (n < cap && r != 0) {
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			n += (size_t)r;
	}
	*got = n;
	return n == cap ? -EFBIG : 0;
}

int sample_read_file(const char *path, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	int fd, r;

	*len = 0;
	if (!path || !buf || cap == 0)
		return -EINVAL;
	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* All of cap, so that a file of exactly cap - 1 bytes is seen to fit. */
	r = read_all(fd, buf, cap, &n);
	close(fd);
	if (n == cap)
		n = cap - 1; /* room for the NUL; the caller got -EFBIG */
	buf[n] = '\0';
	*len = n;
	return r;
}
