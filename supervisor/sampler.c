/* The sampler: measure, never decide or act.  From the tick it refreshes
 * each worker's scoreboard figures (no syscall), and every sample_interval
 * it reads /proc for each worker (stat, status, schedstat, per-thread task
 * files, wchan in D state, smaps_rollup on the slower smaps_interval), the
 * host and cgroup, and each listener's accept queue, into sample.h's data.  Readers are thin: open,
 * read, hand the text to a parser of sample_parse.c.  A worker that exits
 * between two reads is normal (ENOENT/ESRCH), never an error worth a log. */
#include "supervisor/sampler.h"
#include "supervisor/cpus.h"

#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/ctlsrv.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"

#define READ_BUF 16384
static const char *const psi_names[3] = {"cpu", "io", "memory"};

static int read_parse(const char *path, char *buf, size_t cap,
		      int (*parse)(const char *, size_t, void *), void *out)
{
	size_t len;
	int r = sample_read_file(path, buf, cap, &len);
	if (r < 0 && r != -EFBIG)
		return r;
	return parse(buf, len, out) < 0 ? -EINVAL : 0;
}

/* The parsers take typed pointers; these adapters let read_parse take them all. */
#define PARSER(name, type)                                                  \
	static int name##_v(const char *t, size_t l, void *o)               \
	{                                                                   \
		return name(t, l, (type *)o);                               \
	}
PARSER(parse_proc_stat, struct proc_stat)
PARSER(parse_proc_status, struct proc_status)
PARSER(parse_schedstat, struct schedstat)
PARSER(parse_smaps_rollup, struct smaps_rollup)
PARSER(parse_loadavg, struct loadavg)
PARSER(parse_vmstat_swap, struct vmstat_swap)
PARSER(parse_cg2_cpu_max, struct cg_cpu_max)
PARSER(parse_cg1_cfs_quota, struct cg_cpu_max)
PARSER(parse_cg1_cfs_period, struct cg_cpu_max)
PARSER(parse_cg2_cpu_stat, struct cg_cpu_stat)
PARSER(parse_cg1_cpu_stat, struct cg_cpu_stat)

static struct task_sample *task_slot(struct task_buf *tb)
{
	if (tb->n == tb->cap) {
		size_t cap = tb->cap ? tb->cap * 2 : 8;
		struct task_sample *t = realloc(tb->t, cap * sizeof(*t));
		if (!t)
			return NULL;
		tb->t = t;
		tb->cap = cap;
	}
	return &tb->t[tb->n++];
}

/* Every thread's status and schedstat.  A thread gone between readdir and
 * open is skipped: its switches simply stop counting. */
static int read_tasks(pid_t pid, struct task_buf *tb, bool sched, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)) && tb->n < SAMPLE_MAX_TASKS) {
		int tid = atoi(de->d_name);
		if (tid <= 0)
			continue;
		struct task_sample ts = {.tid = tid};
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, tid);
		if (read_parse(path, buf, cap, parse_proc_status_v, &ts.status) < 0)
			continue;
		if (sched) {
			snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, tid);
			(void)read_parse(path, buf, cap, parse_schedstat_v, &ts.sched);
		}
		struct task_sample *slot = task_slot(tb);
		if (!slot)
			break;
		*slot = ts;
	}
	closedir(d);
	return 0;
}

static void read_wchan(pid_t pid, struct proc_view *v, char *buf, size_t cap)
{
	char path[64];
	size_t len;
	v->wchan[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	if (sample_read_file(path, buf, cap, &len) == 0)
		snprintf(v->wchan, sizeof(v->wchan), "%.*s", (int)strcspn(buf, "\n"), buf);
}

/* status, then the per-thread view: for a single-threaded process the
 * process files are the thread's, which saves two opens per worker. */
static int read_status_tasks(pid_t pid, struct proc_view *v, struct task_buf *tb, char *buf,
			     size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int r = read_parse(path, buf, cap, parse_proc_status_v, &v->proc.status);
	if (r < 0)
		return r;
	tb->n = 0;
	if (v->proc.stat.num_threads <= 1) {
		snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
		(void)read_parse(path, buf, cap, parse_schedstat_v, &v->proc.sched);
		struct task_sample *t = task_slot(tb);
		if (t)
			*t = (struct task_sample){.tid = pid, .status = v->proc.status,
						  .sched = v->proc.sched};
		return 0;
	}
	r = read_tasks(pid, tb, true, buf, cap);
	v->proc.sched = (struct schedstat){0};
	for (size_t i = 0; i < tb->n; i++) {
		v->proc.sched.cpu_ns += tb->t[i].sched.cpu_ns;
		v->proc.sched.wait_ns += tb->t[i].sched.wait_ns;
		v->proc.sched.timeslices += tb->t[i].sched.timeslices;
	}
	return r == -ENOENT || r == -ESRCH ? r : 0;
}

static void reset_view(struct proc_view *v, pid_t pid)
{
	struct task_buf t0 = v->tasks[0], t1 = v->tasks[1];
	t0.n = t1.n = 0;
	*v = (struct proc_view){.pid = pid, .tasks = {t0, t1}};
}

/* The /proc way: every thread's files, deltas by tid against the last pass. */
static int read_threads_proc(pid_t pid, struct proc_view *v, char *buf, size_t cap)
{
	unsigned next = v->valid ? v->cur ^ 1u : v->cur;
	int r = read_status_tasks(pid, v, &v->tasks[next], buf, cap);
	if (r < 0)
		return r;
	v->t_ns = sb_now_ns();
	if (v->valid && (v->detail_t_ns == 0 || v->detail_t_ns == v->prev_t_ns)) {
		struct task_buf *a = &v->tasks[v->cur], *b = &v->tasks[next];
		sample_threads_aggregate(a->t, a->n, b->t, b->n, &v->agg);
	} else {
		v->agg = (struct thread_agg){0}; /* tasks[cur] is not the last pass's */
	}
	v->cur = next;
	v->detail_t_ns = v->t_ns;
	v->has_ts = v->has_ts_prev = false;
	return 0;
}

/* This worker's turn on the thread-group path: its per-thread files, with
 * deltas against its previous turn, for what only they tell (which thread
 * switches most; run-queue wait when delay accounting is off). */
static void read_detail(pid_t pid, struct proc_view *v, char *buf, size_t cap)
{
	unsigned next = v->cur ^ 1u;
	struct task_buf *a = &v->tasks[v->cur], *b = &v->tasks[next];
	b->n = 0;
	/* With delay accounting taskstats has the run-queue wait already. */
	if (read_tasks(pid, b, !v->ts.has_delay, buf, cap) < 0)
		return;
	uint64_t t = sb_now_ns();
	if (v->detail_t_ns && t > v->detail_t_ns) {
		struct thread_agg d;
		double span = (double)(t - v->detail_t_ns) / 1e9;
		sample_threads_aggregate(a->t, a->n, b->t, b->n, &d);
		v->detail_s = span;
		v->detail_wait_s = (double)d.wait_ns / 1e9 / span;
		v->detail_busiest_tid = d.busiest_tid;
		v->detail_busiest_csw_s = (double)d.busiest_csw / span;
	}
	v->cur = next;
	v->detail_t_ns = t;
}

/* The interval's thread figures from two taskstats totals: the same sums
 * the per-thread path makes, except that a thread which exited during the
 * interval takes its switches with it (the total may step back: 0). */
static void agg_from_totals(struct proc_view *v)
{
	const struct ts_totals *a = &v->ts_prev, *b = &v->ts;
	struct thread_agg *g = &v->agg;
	*g = (struct thread_agg){0};
	if (!v->has_ts_prev)
		return;
	double el = (double)(v->t_ns - v->prev_t_ns) / 1e9;
	bool delay = a->has_delay && b->has_delay;
	g->vcsw = sample_delta(a->nvcsw, b->nvcsw);
	g->ivcsw = sample_delta(a->nivcsw, b->nivcsw);
	g->cpu_ns = delay ? sample_delta(a->run_ns, b->run_ns) : sample_delta(a->cpu_ns, b->cpu_ns);
	g->wait_ns = delay ? sample_delta(a->delay_ns, b->delay_ns)
			   : (uint64_t)(v->detail_wait_s * el * 1e9);
	g->n_both = (unsigned)v->proc.stat.num_threads;
	g->busiest_tid = v->detail_busiest_tid;
	g->busiest_csw = (uint64_t)(v->detail_busiest_csw_s * el + 0.5);
}

/* The thread-group path: one taskstats message for all threads.  -errno
 * from taskstats (the caller falls back to /proc). */
static int read_threads_group(pid_t pid, struct proc_view *v, const struct sample_opts *o,
			      char *buf, size_t cap)
{
	struct ts_totals t;
	int r = taskstats_tgid(o->ts, pid, &t);
	if (r < 0)
		return r;
	v->t_ns = sb_now_ns();
	v->ts_prev = v->ts;
	v->has_ts_prev = v->has_ts && v->valid;
	v->ts = t;
	v->has_ts = true;
	v->proc.sched = (struct schedstat){
		.cpu_ns = t.has_delay ? t.run_ns : t.cpu_ns,
		.wait_ns = t.delay_ns,
		.timeslices = t.cpu_count,
	};
	if (o->detail)
		read_detail(pid, v, buf, cap);
	agg_from_totals(v);
	return 0;
}

/* RSS has moved since the last smaps_rollup read by 1 MiB and 1%: the
 * memory verdicts need a fresh one.  A worker whose RSS stands still keeps
 * its figures a while longer (its Pss can still drift as siblings come and
 * go: the caller bounds how long). */
static bool rss_moved(const struct proc_view *v)
{
	if (!v->has_smaps || !v->proc.status.has_vm)
		return true;
	uint64_t a = v->smaps.rss_kb, b = v->proc.status.vm_rss_kb;
	uint64_t d = a > b ? a - b : b - a;
	return d >= 1024 && d * 100 >= a;
}

int sample_read_proc_opts(pid_t pid, struct proc_view *v, const struct sample_opts *o,
			  char *buf, size_t cap)
{
	char path[64];
	struct proc_stat st;
	uint64_t t0 = sb_now_ns();
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = read_parse(path, buf, cap, parse_proc_stat_v, &st);
	if (r < 0)
		return r;
	if (v->pid != pid || (v->valid && v->starttime != st.starttime))
		reset_view(v, pid);
	v->prev = v->proc;
	v->prev_t_ns = v->t_ns;
	v->proc.stat = st;
	r = -ENOSYS;
	if (o->ts && st.num_threads > 1) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		r = read_parse(path, buf, cap, parse_proc_status_v, &v->proc.status);
		if (r < 0)
			return r;
		r = read_threads_group(pid, v, o, buf, cap);
		if (r < 0 && o->ts_error)
			*o->ts_error = r;
	}
	if (r < 0 && (r = read_threads_proc(pid, v, buf, cap)) < 0)
		return r;
	v->has_delta = v->valid;
	if (v->valid) {
		v->vcsw_total += v->agg.vcsw;
		v->ivcsw_total += v->agg.ivcsw;
		v->wait_ns_total += v->agg.wait_ns;
	}
	v->valid = true;
	v->starttime = st.starttime;
	if (st.state == 'D')
		read_wchan(pid, v, buf, cap);
	else
		v->wchan[0] = '\0';
	if (o->smaps || (o->smaps_missing && !v->has_smaps) ||
	    (o->smaps_if_moved && rss_moved(v))) {
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
		v->has_smaps = read_parse(path, buf, cap, parse_smaps_rollup_v, &v->smaps) == 0;
		v->smaps_reads++;
	}
	v->cost_ns = sb_now_ns() - t0;
	return 0;
}

int sample_read_proc(pid_t pid, struct proc_view *v, bool smaps, char *buf, size_t cap)
{
	struct sample_opts o = {.smaps = smaps, .smaps_missing = true};
	return sample_read_proc_opts(pid, v, &o, buf, cap);
}

int sample_find_cgroup(struct host_view *h, pid_t pid, char *buf, size_t cap)
{
	struct cg_self self;
	size_t len;
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/cgroup");
	h->cg_version = 0;
	if (sample_read_file(path, buf, cap, &len) < 0 ||
	    parse_self_cgroup(buf, len, &self) < 0)
		return 0;
	int v = cg_self_cpu_dir(&self, "/sys/fs/cgroup", h->cg_dir, sizeof(h->cg_dir));
	if (v > 0)
		h->cg_version = v;
	return h->cg_version;
}

static void read_cgroup(struct host_view *h, char *buf, size_t cap)
{
	char path[sizeof(h->cg_dir) + 32];
	struct cg_cpu_max m = {.quota_us = CG_QUOTA_NONE, .period_us = 100000};
	struct cg_cpu_stat st = {0};
	if (h->cg_version == 2) {
		snprintf(path, sizeof(path), "%s/cpu.max", h->cg_dir);
		h->has_cg_max = read_parse(path, buf, cap, parse_cg2_cpu_max_v, &m) == 0;
		snprintf(path, sizeof(path), "%s/cpu.stat", h->cg_dir);
		h->has_cg_stat = read_parse(path, buf, cap, parse_cg2_cpu_stat_v, &st) == 0;
	} else if (h->cg_version == 1) {
		snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", h->cg_dir);
		h->has_cg_max = read_parse(path, buf, cap, parse_cg1_cfs_quota_v, &m) == 0;
		snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", h->cg_dir);
		(void)read_parse(path, buf, cap, parse_cg1_cfs_period_v, &m);
		snprintf(path, sizeof(path), "%s/cpu.stat", h->cg_dir);
		h->has_cg_stat = read_parse(path, buf, cap, parse_cg1_cpu_stat_v, &st) == 0;
	}
	h->cg_max = m;
	h->effective_cpus = cg_effective_cpus(h->has_cg_max ? &m : NULL, h->online_cpus);
	h->cg_stat_prev = h->cg_stat;
	h->cg_stat = st;
}

int sample_read_host(struct host_view *h, char *buf, size_t cap)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	h->online_cpus = n > 0 ? (unsigned)n : 1;
	h->has_load = read_parse("/proc/loadavg", buf, cap, parse_loadavg_v, &h->load) == 0;
	for (int i = 0; i < 3; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/pressure/%s", psi_names[i]);
		h->psi_prev[i] = h->psi[i];
		if (sample_psi_load(path, buf, cap, &h->psi[i]) < 0)
			h->psi[i].present = false;
	}
	read_cgroup(h, buf, cap);
	h->swap_prev = h->swap;
	h->has_swap_prev = h->has_swap;
	h->has_swap = read_parse("/proc/vmstat", buf, cap, parse_vmstat_swap_v, &h->swap) == 0;
	return 0;
}

void sample_host_rates(struct host_view *h, double el)
{
	for (int i = 0; i < 3; i++) {
		bool both = h->psi[i].present && h->psi_prev[i].present;
		h->psi_some_pct[i] = both ? stats_psi_share(h->psi_prev[i].some.total_us,
							    h->psi[i].some.total_us, el) : 0;
		h->psi_full_pct[i] = both && h->psi[i].has_full
			? stats_psi_share(h->psi_prev[i].full.total_us, h->psi[i].full.total_us, el)
			: 0;
	}
	if (h->has_cg_stat)
		sample_cg_rates(&h->cg_stat_prev, &h->cg_stat, el, &h->cg_rates);
	h->swap_pages_s = NAN;
	if (h->has_swap && h->has_swap_prev && el > 0) {
		uint64_t now = h->swap.pswpin + h->swap.pswpout;
		uint64_t then = h->swap_prev.pswpin + h->swap_prev.pswpout;
		h->swap_pages_s = now >= then ? (double)(now - then) / el : 0;
	}
}

static void read_listeners(struct sampler *s, const struct listeners *ls)
{
	s->nl = ls->n < SAMPLE_MAX_LISTENERS ? ls->n : SAMPLE_MAX_LISTENERS;
	for (size_t i = 0; i < s->nl; i++) {
		struct listener_view *l = &s->l[i];
		snprintf(l->name, sizeof(l->name), "%s", ls->l[i].name);
		l->tcp = ls->l[i].family != AF_UNIX;
		l->ok = l->tcp && listen_queue(ls->l[i].fd, &l->queued, &l->limit) == 0;
	}
}

/* ---- workers ---- */

static void copy_slot(struct worker_view *v, struct sb_slot *sl)
{
	v->sb_state = atomic_load(&sl->state);
	v->inflight = atomic_load(&sl->inflight);
	v->connections = atomic_load(&sl->connections);
	v->booted_ns = sb_load(&sl->booted_ns);
	v->heartbeat_ns = sb_load(&sl->heartbeat_ns);
	v->requests = sb_load(&sl->requests);
	v->accepted = sb_load(&sl->accepted);
	v->bytes_out = sb_load(&sl->bytes_out);
	v->busy_ns = sb_load(&sl->busy_ns);
	v->trims = sb_load(&sl->trims);
	for (int i = 0; i < 6; i++)
		v->status_class[i] = sb_load(&sl->status_class[i]);
	for (int i = 0; i < SB_HIST_BUCKETS; i++)
		v->hist.b[i] = sb_load(&sl->hist[i]);
	v->hist.sum_ns = sb_load(&sl->hist_sum_ns);
	v->heap_arena = sb_load(&sl->heap_arena);
	v->heap_mmap = sb_load(&sl->heap_hblkhd);
	v->heap_in_use = sb_load(&sl->heap_uordblks);
	v->heap_free = sb_load(&sl->heap_fordblks);
	stallstat_read(&v->stall, sl, sb_now_ns());
	v->py_arena = sb_load(&sl->py_arena_bytes);
	v->py_blocks = sb_load(&sl->py_blocks);
	for (int k = 0; k < SB_AE_KINDS; k++)
		v->accept_errors[k] = sb_load(&sl->accept_errors[k]);
}

/* Histogram delta over the window, then push the current snapshot.  A new
 * worker's ring starts with an empty snapshot: it was born with no counts,
 * so requests served before the master first saw it still count. */
static void window_push(struct worker_view *v)
{
	if (v->ring_n == 0) {
		v->ring[0] = (struct stats_hist){0};
		v->ring_pos = 1;
		v->ring_n = 1;
	}
	const struct stats_hist *oldest = v->ring_n < STATS_WINDOW ? &v->ring[0]
								   : &v->ring[v->ring_pos];
	stats_hist_delta(oldest, &v->hist, &v->window);
	v->ring[v->ring_pos] = v->hist;
	v->ring_pos = (v->ring_pos + 1) % STATS_WINDOW;
	if (v->ring_n < STATS_WINDOW)
		v->ring_n++;
}

static void worker_figures(struct sampler *s, struct worker_view *v, uint64_t requests_before,
			   uint64_t busy_before)
{
	struct proc_view *p = &v->p;
	v->has_figures = p->has_delta;
	if (!p->has_delta)
		return;
	struct stats_input in = {
		.elapsed_s = (double)(p->t_ns - p->prev_t_ns) / 1e9,
		.clk_tck = s->clk_tck,
		.requests = sample_delta(requests_before, v->requests),
		.busy_ns = sample_delta(busy_before, v->busy_ns),
		.utime = sample_delta(p->prev.stat.utime, p->proc.stat.utime),
		.stime = sample_delta(p->prev.stat.stime, p->proc.stat.stime),
		.threads = p->agg,
		.window = v->window,
	};
	stats_worker_figures(&in, &v->fig);
}

static void retire(struct sampler *s, struct worker_view *v)
{
	/* Requests served since our last read are lost with the slot. */
	s->retired_requests += v->requests;
	stats_hist_add(&s->retired_hist, &v->hist);
	stallstat_end_ongoing(&v->stall); /* a gone worker's stall has ended */
	v->stall.recent = 0;
	stallstat_add(&s->stall_retired, &v->stall);
	struct task_buf t0 = v->p.tasks[0], t1 = v->p.tasks[1];
	memset(v, 0, sizeof(*v));
	v->p.tasks[0] = t0;
	v->p.tasks[1] = t1;
}

/* Identity and scoreboard counters: no syscall. */
static void refresh_worker(struct sampler *s, const struct worker_rec *w, struct worker_view *v)
{
	if (v->p.pid != w->pid) {
		if (v->p.pid)
			retire(s, v);
		v->p.pid = w->pid;
		v->no = w->no;
		v->generation = w->generation;
		v->spawned_ns = w->spawned_ns;
	}
	v->stop_ns = w->stop_ns;
	v->kill_ns = w->kill_ns;
	v->stopping = w->stop_ns != 0;
	copy_slot(v, w->slot);
}

static void sample_worker(struct sampler *s, const struct worker_rec *w, struct worker_view *v,
			  const struct sample_opts *o, char *buf)
{
	refresh_worker(s, w, v);
	window_push(v);
	uint64_t req0 = v->pass_requests, busy0 = v->pass_busy_ns;
	v->pass_requests = v->requests;
	v->pass_busy_ns = v->busy_ns;
	if (sample_read_proc_opts(w->pid, &v->p, o, buf, READ_BUF) < 0) {
		v->p.pid = w->pid; /* gone or unreadable: keep the scoreboard figures */
		v->has_figures = false;
		return;
	}
	worker_figures(s, v, req0, busy0);
}

void sampler_refresh(struct sampler *s, const struct pool *p, const char *state,
		     const struct drover_conf *c, uint64_t now)
{
	struct master_view *m = &s->master;
	m->pid = getpid();
	m->state = state;
	m->generation = p->generation;
	m->target = p->target;
	m->live = pool_live(p);
	m->booted = pool_ready(p);
	m->now_ns = now;
	m->interval_s = c->sample_interval;
	m->smaps_interval_s = c->smaps_interval;
	_Static_assert(sizeof(m->accept_errors) == sizeof(ctlsrv_accept_errors), "CTLSRV_KINDS");
	memcpy(m->accept_errors, ctlsrv_accept_errors, sizeof(m->accept_errors));
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_view *v = &s->w[i];
		if (p->w[i].pid)
			refresh_worker(s, &p->w[i], v);
		else if (v->p.pid)
			retire(s, v);
	}
}

static void sample_self(struct sampler *s, bool smaps, char *buf)
{
	if (sample_read_proc(getpid(), &s->self, smaps, buf, READ_BUF) < 0 || !s->self.has_delta)
		return;
	double el = (double)(s->self.t_ns - s->self.prev_t_ns) / 1e9;
	sample_proc_rates(&s->self.prev, &s->self.proc, el, s->clk_tck, &s->self_rates);
}

/* Which workers read their per-thread files this pass: in turn from
 * detail_next, up to budget threads (at least one worker), so that the
 * per-thread figures of every worker are refreshed every few passes at a
 * bounded cost per pass.  budget 0: all of them. */
static void plan_detail(struct sampler *s, const struct pool *p, long long budget,
			bool detail[SB_MAX_SLOTS])
{
	long long used = 0;
	unsigned i = s->detail_next % SB_MAX_SLOTS, k;
	for (k = 0; k < SB_MAX_SLOTS; k++, i = (i + 1) % SB_MAX_SLOTS) {
		detail[i] = budget == 0;
		if (!p->w[i].pid || budget == 0)
			continue;
		long n = s->w[i].p.pid == p->w[i].pid ? s->w[i].p.proc.stat.num_threads : 0;
		n = n > 1 ? n : 1;
		if (used && used + n > budget)
			break;
		detail[i] = true;
		used += n;
	}
	for (; k < SB_MAX_SLOTS; k++, i = (i + 1) % SB_MAX_SLOTS)
		detail[i] = false;
	s->detail_next = i;
}

/* smaps_rollup costs in proportion to a worker's mappings: each worker is
 * read at most once per smaps_interval, and only if its RSS moved or its
 * heap was trimmed since the last read (else after SMAPS_STALE_X more
 * intervals), at most a share of the pool per pass (and at least 4), so that
 * the reads spread over the interval instead of making every
 * smaps_interval-th pass the slow one.  The memory verdicts take a point at
 * each worker's own read (recycler.c). */
#define SMAPS_STALE_X 3
static unsigned smaps_budget(const struct pool *p, const struct drover_conf *c)
{
	double share = c->smaps_interval > 0 ? c->sample_interval / c->smaps_interval : 1;
	unsigned n = (unsigned)((double)pool_live(p) * share) + 1;
	return n > 4 ? n : 4;
}

static void sample_workers(struct sampler *s, const struct pool *p, const struct drover_conf *c,
			   uint64_t now, char *buf)
{
	struct stats_hist acc;
	bool detail[SB_MAX_SLOTS];
	s->ts_used = s->ts.fd >= 0 && c->sample_thread_budget > 0;
	plan_detail(s, p, s->ts_used ? c->sample_thread_budget : 0, detail);
	unsigned smaps_left = smaps_budget(p, c);
	stats_pool_begin(&s->pool, &acc);
	s->stall = s->stall_retired;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++) {
		struct worker_view *v = &s->w[i];
		if (!p->w[i].pid) {
			if (v->p.pid)
				retire(s, v);
			continue;
		}
		bool fresh = v->p.pid != p->w[i].pid || !v->p.has_smaps;
		/* due, and RSS moved or a trim happened since (or it is stale) */
		bool due = now >= v->p.smaps_due_ns;
		uint64_t stale = v->p.smaps_due_ns + (uint64_t)(SMAPS_STALE_X * c->smaps_interval * 1e9);
		struct sample_opts o = {
			.smaps = smaps_left && (fresh || now >= stale ||
						(due && v->trims != v->smaps_trims)),
			.smaps_if_moved = smaps_left && due,
			.ts = s->ts_used ? &s->ts : NULL,
			.detail = detail[i],
			.ts_error = &s->ts_error,
		};
		uint64_t smaps_before = v->p.smaps_reads;
		sample_worker(s, &p->w[i], v, &o, buf);
		if (v->p.smaps_reads != smaps_before) {
			smaps_left--;
			v->smaps_trims = v->trims;
			v->p.smaps_due_ns = now + (uint64_t)(c->smaps_interval * 1e9);
		}
		stallstat_add(&s->stall, &v->stall);
		if (v->has_figures)
			stats_pool_add(&s->pool, &acc, &v->fig, &v->window);
	}
	stats_pool_end(&s->pool, &acc);
	/* No permission or no taskstats: every thread's files from now on. */
	int e = s->ts_error;
	if (s->ts.fd >= 0 && (e == -EPERM || e == -EACCES || e == -EOPNOTSUPP || e == -EINVAL)) {
		log_info("sampler: taskstats unusable (%s): per-thread files for every thread",
			strerror(-s->ts_error));
		taskstats_close(&s->ts);
	}
}

/* Usable CPUs: the quota's, or the workers' affinity if fewer (cpus.h). */
static void pool_cpus(struct sampler *s)
{
	static pid_t pids[SB_MAX_SLOTS];
	size_t n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		if (s->w[i].p.pid)
			pids[n++] = s->w[i].p.pid;
	cpus_host_update(&s->host, pids, n);
}

static uint64_t cpu_now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pass_account(struct sampler *s, uint64_t ns)
{
	if (ns > s->max_pass_ns)
		s->max_pass_ns = ns;
	s->pass_sum_ns += ns;
	size_t b = 0;
	while (b < SAMPLE_PASS_BUCKETS && (double)ns / 1e9 > sample_pass_le_s[b])
		b++;
	s->pass_hist[b]++;
}

void sampler_pass(struct sampler *s, const struct pool *p, const struct listeners *ls,
		  const char *state, const struct drover_conf *c, uint64_t now)
{
	static char buf[READ_BUF]; /* the master is single-threaded */
	uint64_t cpu0 = cpu_now_ns();
	bool smaps = now >= s->next_smaps_ns;
	if (smaps)
		s->next_smaps_ns = now + (uint64_t)(c->smaps_interval * 1e9);
	s->next_pass_ns = now + (uint64_t)(c->sample_interval * 1e9);
	sampler_refresh(s, p, state, c, now);
	double el = s->host.has_load ? (double)(now - s->last_host_ns) / 1e9 : 0;
	s->last_host_ns = now;
	sample_read_host(&s->host, buf, sizeof(buf));
	sample_host_rates(&s->host, el);
	read_listeners(s, ls);
	sample_workers(s, p, c, now, buf);
	pool_cpus(s);
	sample_self(s, smaps, buf);
	s->passes++;
	s->last_pass_ns = sb_now_ns() - now;
	pass_account(s, s->last_pass_ns);
	s->last_pass_cpu_ns = cpu_now_ns() - cpu0;
	s->cpu_ns_total += s->last_pass_cpu_ns;
	/* Per worker: the pass's CPU (host and self reads included) shared out. */
	unsigned n = 0;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		n += s->w[i].p.pid && s->w[i].p.valid;
	s->cost_us_per_worker = n ? (double)s->last_pass_cpu_ns / 1e3 / n : 0;
}

struct sampler *sampler_new(void)
{
	struct sampler *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->clk_tck = sysconf(_SC_CLK_TCK);
	s->page_size = sysconf(_SC_PAGESIZE);
	char buf[4096];
	sample_find_cgroup(&s->host, 0, buf, sizeof(buf));
	s->master.started_ns = sb_now_ns();
	s->ts_error = taskstats_open(&s->ts);
	return s;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SB_MAX_SLOTS; i++)
		for (int k = 0; k < 2; k++)
			free(s->w[i].p.tasks[k].t);
	for (int k = 0; k < 2; k++)
		free(s->self.tasks[k].t);
	taskstats_close(&s->ts);
	free(s);
}

void sampler_worker_exited(struct sampler *s, const struct pool *p, const struct worker_rec *w)
{
	/* Take the slot's final counters before it is released, so requests
	 * served since the last pass still count in the pool totals. */
	struct worker_view *v = &s->w[w - p->w];
	if (v->p.pid == w->pid)
		copy_slot(v, w->slot);
}
